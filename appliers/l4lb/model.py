"""What the kernel holds for VIPs, as plain data: `KernelVip` (one VIP's slots, what
desired.py makes of a `schemas.l4lb.Vip`) and `TableState` (one family's table, which
`table_state` parses from a listing). The planner only ever compares these two shapes.
No kernel access here.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, field
from typing import Any, Iterable

TABLE = "wayfinder"
PROTOCOLS = ("tcp", "udp")


@dataclass(frozen=True)
class Family:
    """One nftables address family: one table `wayfinder` each."""

    name: str  # nft family and address keyword: "ip" / "ip6"
    addr_type: str  # nft datatype of an address
    version: int


IP = Family("ip", "ipv4_addr", 4)
IP6 = Family("ip6", "ipv6_addr", 6)
FAMILIES = (IP, IP6)

VipKey = tuple[str, str, int]  # (vip ip, protocol, port), ip in canonical text form
Slot = tuple[str, int]  # (backend ip, backend port)


def family_of(ip: str) -> Family:
    """Of a canonical address (model's own output): a colon means IPv6."""
    return IP6 if ":" in ip else IP


def ip_order(ip: str) -> tuple[int, int]:
    """Numeric order, so 10.0.0.9 sorts before 10.0.0.10 (text order would not). inet_pton,
    not ipaddress: this runs for every VIP of a full rebuild, and ipaddress is 10x slower."""
    if ":" in ip:
        return (6, int.from_bytes(socket.inet_pton(socket.AF_INET6, ip), "big"))
    return (4, int.from_bytes(socket.inet_pton(socket.AF_INET, ip), "big"))


def key_order(key: VipKey) -> tuple:
    return (ip_order(key[0]), key[1], key[2])


def schema_key(key: VipKey) -> str:
    """The topic key of a VIP record: ``tcp/11.0.0.5/80`` (see schemas/l4lb.py)."""
    return f"{key[1]}/{key[0]}/{key[2]}"


@dataclass(frozen=True)
class KernelVip:
    """One VIP as the kernel programs it: dense slots 0..K-1 in the endpoint map.

    `drained` (weight-0 backends) is not in the kernel; it is kept so the planner can tell a
    drained backend (keep its UDP conntrack flows) from a removed one (flush them).
    """

    ip: str
    proto: str
    port: int
    slots: tuple[Slot, ...]
    drained: frozenset[Slot] = field(default=frozenset(), compare=False)

    @property
    def key(self) -> VipKey:
        return (self.ip, self.proto, self.port)

    @property
    def family(self) -> Family:
        return family_of(self.ip)


@dataclass
class TableState:
    """One family's `wayfinder` table as read back. `blocks` maps ("set", "k3") etc. to the
    whitespace-normalised body of that block in the terse (element-free) listing."""

    exists: bool = False
    blocks: dict[tuple[str, str], str] = field(default_factory=dict)
    vip_ips: set[str] = field(default_factory=set)
    # VIP -> the slot set it is in, "k3" ("k3,k5" when someone put it in two)
    vips: dict[VipKey, str] = field(default_factory=dict)
    endpoints: dict[tuple[VipKey, int], Slot] = field(default_factory=dict)
    _index: tuple[dict[str, set[VipKey]], dict[VipKey, set[int]]] | None = field(default=None, repr=False, compare=False)

    def index(self) -> tuple[dict[str, set[VipKey]], dict[VipKey, set[int]]]:
        """(address -> its VIPs in `vips`, VIP -> its slot numbers in `endpoints`): built once,
        then kept current by `replace`, so planning one VIP never scans all of them."""
        if self._index is None:
            by_ip: dict[str, set[VipKey]] = {}
            slots: dict[VipKey, set[int]] = {}
            for key in self.vips:
                by_ip.setdefault(key[0], set()).add(key)
            for key, slot in self.endpoints:
                slots.setdefault(key, set()).add(slot)
            self._index = (by_ip, slots)
        return self._index

    def replace(self, keys: Iterable[VipKey], ips: Iterable[str], part: "TableState") -> None:
        """In place: the elements of `keys` and the `vip_ips` entries of `ips` become those of
        `part` (a partial plan's result). In place because copying 30k VIPs costs more than
        the change itself."""
        by_ip, slots = self.index()
        for key in keys:
            if self.vips.pop(key, None) is not None:
                by_ip[key[0]].discard(key)
                if not by_ip[key[0]]:
                    del by_ip[key[0]]
            for slot in slots.pop(key, ()):
                del self.endpoints[(key, slot)]
        self.vip_ips.difference_update(ips)
        self.vip_ips.update(part.vip_ips)
        for key, sets in part.vips.items():
            self.vips[key] = sets
            by_ip.setdefault(key[0], set()).add(key)
        for (key, slot), backend in part.endpoints.items():
            self.endpoints[(key, slot)] = backend
            slots.setdefault(key, set()).add(slot)

    def kernel_vips(self) -> dict[VipKey, KernelVip | None]:
        """Every VIP in a slot set, rebuilt from its slots; None when it is malformed (in two
        sets, or a slot below K missing)."""
        out: dict[VipKey, KernelVip | None] = {}
        endpoints = self.endpoints
        for key, sets in self.vips.items():
            k = slot_count(sets)  # None for "k3,k5": a VIP in two sets
            slots = [endpoints.get((key, i)) for i in range(k or 0)]
            ok = k is not None and None not in slots
            out[key] = KernelVip(key[0], key[1], key[2], tuple(slots)) if ok else None  # type: ignore[arg-type]
        return out


_BLOCK = re.compile(r"^\t(set|map|chain) (\S+) \{$")


def slot_count(set_name: str) -> int | None:
    """K of a slot set's name "kK"; None for any other name. String tests, not a regex: this
    runs once per VIP of a read."""
    digits = set_name[1:]
    return int(digits) if set_name[:1] == "k" and digits.isascii() and digits.isdigit() else None


def structure_blocks(terse: str) -> dict[tuple[str, str], str]:
    """Split a terse `list table` text into blocks; bodies are whitespace-normalised so the
    comparison does not depend on indentation, only on what nft prints."""
    blocks: dict[tuple[str, str], str] = {}
    current: tuple[str, str] | None = None
    body: list[str] = []
    for line in terse.splitlines():
        match = _BLOCK.match(line)
        if match:
            current, body = (match.group(1), match.group(2)), []
        elif current and line == "\t}":
            blocks[current] = " ".join(" ".join(body).split())
            current = None
        elif current:
            body.append(line)
    return blocks


def _value(v: Any) -> Any:
    """nft JSON prints addresses and protocol names as strings, ports and slots as numbers."""
    # nft prints IPv4 canonically already; only IPv6 text may need Python's spelling, and
    # calling ipaddress on every value costs seconds at 10k VIPs.
    if isinstance(v, str) and ":" in v:
        return str(ipaddress.ip_address(v))
    return v


def _unwrapped(elem: Any) -> Any:
    """An element with a comment, a timeout or counters is listed as {"elem": {"val": ...,
    "comment": ...}}: its value. Someone's hand-made element is still an element to repair."""
    while isinstance(elem, dict) and isinstance(elem.get("elem"), dict) and "val" in elem["elem"]:
        elem = elem["elem"]["val"]
    return elem


def table_state(listing: dict, terse: str) -> TableState:
    """Parse `nft -j list table` output (elements) and the terse text listing (structure)."""
    state = TableState(exists=True, blocks=structure_blocks(terse))
    for item in listing.get("nftables", []):
        obj = item.get("set") or item.get("map")
        if not obj:
            continue
        for elem in obj.get("elem", []):
            elem = _unwrapped(elem)
            if isinstance(elem, list) and elem:
                elem = [_unwrapped(elem[0]), *elem[1:]]
            if obj["name"] == "vip_ips" and isinstance(elem, str):
                state.vip_ips.add(_value(elem))
            elif slot_count(obj["name"]) is not None and isinstance(elem, dict) and "concat" in elem:
                key = tuple(_value(p) for p in elem["concat"])
                held = state.vips.get(key)  # type: ignore[call-overload]
                state.vips[key] = f"{held},{obj['name']}" if held else obj["name"]  # type: ignore[index]
            elif obj["name"] == "endpoints" and isinstance(elem, list):
                ip, proto, port, slot = (_value(p) for p in elem[0]["concat"])
                state.endpoints[((ip, proto, port), slot)] = tuple(_value(p) for p in elem[1]["concat"])  # type: ignore[assignment]
    return state
