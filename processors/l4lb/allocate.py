"""IP addresses for named VIPs (reference §3.4), allocated once and kept. Pure.

dcos-net lets every node hash names into 11.0.0.0/8 on its own and probe on collision, so
two nodes that saw VIPs appear in a different order can disagree on an IP. Here one
processor allocates, the result is published, and the previous allocations are an input:

- a VIP keeps its IP for as long as it is wanted, whatever else comes and goes;
- a new VIP starts at a candidate derived from sha1("<name>.<framework>") (stable across
  processes and Python versions, unlike ``hash()``) and probes linearly, wrapping around;
- new VIPs are placed in sorted order, so the same inputs always give the same table;
- a VIP no longer wanted is released, and its IP may go to a later VIP.

One call allocates one address family; derive.py calls it for IPv4 and for IPv6.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping, Set

VipName = tuple[str, str]  # (name as the label wrote it, framework name)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_RANGES: dict[int, Network] = {
    4: ipaddress.IPv4Network("11.0.0.0/8"),
    6: ipaddress.IPv6Network("fd01:c::/64"),
}


def usable_offsets(network: Network) -> range:
    """Offsets into ``network`` that may be handed out.

    IPv4 skips the network and broadcast addresses (11.0.0.0 and 11.255.255.255), which some
    stacks refuse as destinations; IPv6 skips only the subnet-router anycast address (``::``).
    Networks of one or two addresses are used whole, so tests can force collisions.
    (A /64 holds more offsets than ``len()`` can count: use ``_count``, not ``len``.)
    """
    size = network.num_addresses
    if size <= 2:
        return range(size)
    return range(1, size - 1) if network.version == 4 else range(1, size)


def _count(offsets: range) -> int:
    return offsets.stop - offsets.start


def candidate(name: VipName, network: Network) -> int:
    """The first offset to try for ``name``: sha1 of ``<name>.<framework>`` folded into the range."""
    offsets = usable_offsets(network)
    digest = hashlib.sha1(f"{name[0]}.{name[1]}".encode()).digest()
    return offsets.start + int.from_bytes(digest, "big") % _count(offsets)


def _offset_of(ip: str, network: Network) -> int | None:
    """``ip``'s offset in ``network`` if it is a usable address there, else None."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if address.version != network.version or address not in network:
        return None
    offset = int(address) - int(network.network_address)
    return offset if offset in usable_offsets(network) else None


def allocate(
    wanted: Set[VipName],
    previous: Mapping[VipName, str],
    network: Network,
    reserved: Set[str] = frozenset(),
) -> dict[VipName, str]:
    """An IP in ``network`` for every wanted name, keeping the previous ones where possible.

    ``reserved`` holds addresses that must not be handed out (IP VIPs declared literally
    inside the range: an explicit address wins over an allocated one, which then moves).
    Names that find no free address are left out; the caller reports them.
    """
    blocked = blocked_offsets(reserved, network)
    taken: set[int] = set()
    result: dict[VipName, str] = {}
    for name in sorted(set(wanted) & set(previous)):
        offset = _offset_of(previous[name], network)
        if offset is not None and offset not in blocked and offset not in taken:
            taken.add(offset)
            result[name] = str(network.network_address + offset)
    result.update(place(set(wanted) - set(result), taken, blocked, network))
    return dict(sorted(result.items()))


def blocked_offsets(reserved: Set[str], network: Network) -> set[int]:
    """The offsets of the reserved addresses that lie in ``network``."""
    return {offset for ip in reserved if (offset := _offset_of(ip, network)) is not None}


def offset_of(ip: str, network: Network) -> int | None:
    """``ip``'s usable offset in ``network`` (None when it is not one)."""
    return _offset_of(ip, network)


def place(names: Set[VipName], taken: set[int], blocked: Set[int], network: Network) -> dict[VipName, str]:
    """Addresses for new ``names``, in sorted order, next to the ``taken`` offsets (updated).

    This is ``allocate``'s second half. Called alone with ``taken`` = the offsets of an
    earlier ``allocate`` result (minus released names) it gives what ``allocate`` would give
    for that result plus ``names``, at the cost of the new names only: the incremental
    VipTable must not pay for every VIP when one appears.
    """
    offsets = usable_offsets(network)
    first, count = offsets.start, _count(offsets)
    result: dict[VipName, str] = {}
    for name in sorted(names):
        start = candidate(name, network) - first
        # Bounded by the number of names placed so far, not by the size of the range.
        for step in range(min(count, len(taken) + len(blocked) + 1)):
            offset = first + (start + step) % count
            if offset not in taken and offset not in blocked:
                taken.add(offset)
                result[name] = str(network.network_address + offset)
                break
    return result
