"""Tasks -> the VIP table (pure): the records behind the ``l4lb vips`` topic.

``derive_vips`` is the whole derivation for a snapshot of the Mesos tables. It is built from
the same pieces a stream processor uses incrementally, so there is one code path:

1. ``contributions_of(task, agent, framework)`` per task (contributions.py);
2. group the contributions by ``VipRef``;
3. ``allocate`` an IP per named VIP and address family that has backends (allocate.py);
4. ``vips_of(ref, contributions, allocations)`` -> the ``Vip`` records of that ref.

Records it produces, keyed ``<protocol>/<ip>/<port>``:
- IP VIP ``10.1.2.3:5000`` on tcp -> ``tcp/10.1.2.3/5000``, no name, no DNS;
- named VIP ``/web:80`` of framework ``marathon`` -> ``tcp/11.x.y.z/80`` with its IPv4
  backends and, if it has IPv6 backends, ``tcp/fd01:c::.../80`` with those; both carry
  ``dns = web.marathon.l4lb.thisdcos.directory``.

Everything is sorted, so the same inputs give byte-identical output.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from processors.l4lb.allocate import DEFAULT_RANGES, Network, VipName, allocate
from processors.l4lb.contributions import Contribution, contribution_order, contributions_of, family_of
from processors.l4lb.labels import Rejection, VipRef
from processors.l4lb.names import vip_dns_name
from schemas.l4lb import Backend, Vip
from schemas.mesos import Agent, Framework, Task

# {4: {(name, framework): "11.x.y.z"}, 6: {(name, framework): "fd01:c::..."}}
Allocations = dict[int, dict[VipName, str]]


@dataclass(frozen=True)
class Derived:
    vips: dict[str, Vip] = field(default_factory=dict)
    allocations: Allocations = field(default_factory=dict)
    rejections: list[Rejection] = field(default_factory=list)


def vip_key(protocol: str, ip: str, port: int) -> str:
    return f"{protocol}/{ip}/{port}"


def backends_of(contributions: Iterable[Contribution]) -> list[Backend]:
    """One backend per ip:port, in address order.

    IPVS holds one destination per ip:port, so when two tasks offer the same one (a killed
    task and its replacement on the same host port, tasks of one pod) the highest weight wins,
    then the smallest task id, so the choice does not depend on input order.
    """
    chosen: dict[tuple[str, int], Contribution] = {}
    for contribution in sorted(contributions, key=lambda c: (-c.weight, c.task_id, c.task_key)):
        chosen.setdefault((contribution.ip, contribution.port), contribution)
    return [c.backend() for c in sorted(chosen.values(), key=contribution_order)]


def families_of(contributions: Iterable[Contribution]) -> set[int]:
    return {family_of(c.ip) for c in contributions}


def vips_of(ref: VipRef, contributions: Iterable[Contribution], allocations: Allocations) -> dict[str, Vip]:
    """The records of one VIP: one for an IP VIP, one per family with backends for a named one.

    A named VIP family without an allocated IP yields nothing (the allocator found no free
    address; derive_vips reports it).
    """
    contributions = list(contributions)
    if not ref.named:
        backends = backends_of(contributions)
        if not backends:
            return {}
        return {vip_key(ref.protocol, ref.address, ref.port): Vip(ref.protocol, ref.address, ref.port, backends)}
    records = {}
    dns = vip_dns_name(ref.address, ref.framework)
    for family in sorted(families_of(contributions)):
        ip = allocations.get(family, {}).get((ref.address, ref.framework))
        backends = backends_of(c for c in contributions if family_of(c.ip) == family)
        if ip is None or not backends:
            continue
        records[vip_key(ref.protocol, ip, ref.port)] = Vip(
            ref.protocol, ip, ref.port, backends, name=ref.address, framework=ref.framework, dns=dns
        )
    return records


def wanted_names(grouped: Mapping[VipRef, Iterable[Contribution]]) -> dict[int, set[VipName]]:
    """Per address family, the named VIPs that have backends of that family."""
    wanted: dict[int, set[VipName]] = defaultdict(set)
    for ref, contributions in grouped.items():
        if ref.named:
            for family in families_of(contributions):
                wanted[family].add((ref.address, ref.framework))
    return wanted


def allocate_all(
    grouped: Mapping[VipRef, Iterable[Contribution]],
    previous: Mapping[int, Mapping[VipName, str]],
    ranges: Mapping[int, Network] = DEFAULT_RANGES,
) -> Allocations:
    """Allocations for every named VIP family that has backends; literal IP VIPs are reserved."""
    reserved = {ref.address for ref in grouped if not ref.named}
    wanted = wanted_names(grouped)
    return {
        family: allocate(wanted.get(family, set()), previous.get(family, {}), network, reserved)
        for family, network in sorted(ranges.items())
    }


def _exhausted(
    wanted: Mapping[int, set[VipName]], allocations: Allocations, ranges: Mapping[int, Network]
) -> list[Rejection]:
    """A rejection per named VIP family left without an address (a full range)."""
    return [
        Rejection("", "", f"{name} ({framework})", f"no free IPv{family} address left in {ranges[family]}")
        for family, names in sorted(wanted.items())
        for name, framework in sorted(names - allocations.get(family, {}).keys())
    ]


def derive_vips(
    tasks: Mapping[str, Task],
    agents: Mapping[str, Agent],
    frameworks: Mapping[str, Framework],
    previous_allocations: Mapping[int, Mapping[VipName, str]] | None = None,
    ranges: Mapping[int, Network] = DEFAULT_RANGES,
) -> Derived:
    """The whole VIP table for the given Mesos tables, and the allocations it used."""
    grouped: dict[VipRef, list[Contribution]] = defaultdict(list)
    rejections: list[Rejection] = []
    for key in sorted(tasks):
        task = tasks[key]
        found = contributions_of(task, agents.get(task.agent_id), frameworks.get(task.framework_id))
        for contribution in found.contributions:
            grouped[contribution.vip].append(contribution)
        rejections.extend(found.rejections)
    allocations = allocate_all(grouped, previous_allocations or {}, ranges)
    rejections.extend(_exhausted(wanted_names(grouped), allocations, ranges))
    vips: dict[str, Vip] = {}
    for ref in sorted(grouped):
        vips.update(vips_of(ref, grouped[ref], allocations))
    ordered = dict(sorted(vips.items(), key=lambda item: _key_order(item[0])))
    return Derived(vips=ordered, allocations=allocations, rejections=sorted(rejections))


def _key_order(key: str) -> tuple:
    """``tcp/10.0.0.2/80`` before ``tcp/10.0.0.10/80``: protocol, then address, then port."""
    protocol, ip, port = key.split("/")
    address = ipaddress.ip_address(ip)
    return (protocol, address.version, int(address), int(port))
