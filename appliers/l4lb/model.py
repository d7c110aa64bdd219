"""What the kernel holds for VIPs, as plain data, and the two ways to get it.

`desired_vips` turns `schemas.l4lb.Vip` records into `KernelVip`s (the slot list the endpoint
map will hold); `table_state` parses the JSON listing of our table back into a `TableState`.
The planner only ever compares these two shapes. Pure: no kernel access here.
"""

from __future__ import annotations

import ipaddress
import math
import re
import socket
from dataclasses import dataclass, field
from typing import Any, Mapping

from schemas.l4lb import Vip

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


def _canonical_ip(text: str) -> str:
    return str(ipaddress.ip_address(text))  # raises ValueError on junk (and on leading zeros)


def slots_of(vip_ip: str, vip: Vip) -> tuple[tuple[Slot, ...], frozenset[Slot], list[str]]:
    """Weights become repeated slots, reduced by their gcd (2,4 -> 1,2), in (ip, port) order.

    Weight 0 gets no slot: no new connections, while conntrack keeps existing ones flowing.
    Returns (slots, drained backends, problems with individual backends).
    """
    weights: dict[Slot, int] = {}
    problems = []
    version = ipaddress.ip_address(vip_ip).version
    for b in vip.backends:
        try:
            ip = _canonical_ip(b.ip)
        except ValueError:
            problems.append(f"backend ip {b.ip!r} is not an address")
            continue
        if ipaddress.ip_address(ip).version != version:
            problems.append(f"backend {ip} is not the VIP's address family")
        elif not 0 < b.port < 65536 or b.weight < 0:
            problems.append(f"backend {ip}:{b.port} weight {b.weight} out of range")
        else:
            weights[(ip, b.port)] = weights.get((ip, b.port), 0) + b.weight
    live = {slot: w for slot, w in weights.items() if w > 0}
    gcd = math.gcd(*live.values()) if live else 1
    order = sorted(live, key=lambda s: (ip_order(s[0]), s[1]))
    slots = tuple(slot for slot in order for _ in range(live[slot] // gcd))
    drained = frozenset(slot for slot, w in weights.items() if w == 0)
    return slots, drained, problems


def _kernel_vip(name: str, vip: Vip) -> tuple[KernelVip | None, list[str]]:
    proto = vip.protocol.lower()
    try:
        ip = _canonical_ip(vip.ip)
    except ValueError:
        return None, [f"{name}: VIP ip {vip.ip!r} is not an address"]
    if proto not in PROTOCOLS or not 0 < vip.port < 65536:
        return None, [f"{name}: protocol {vip.protocol!r} port {vip.port} not programmable"]
    slots, drained, problems = slots_of(ip, vip)
    return KernelVip(ip, proto, vip.port, slots, drained), [f"{name}: {p}" for p in problems]


Converted = dict[str, tuple[Vip, "KernelVip | None", list[str]]]


def desired_vips(
    vips: Mapping[str, Vip], cache: Converted | None = None
) -> tuple[dict[VipKey, KernelVip], dict[VipKey, str], list[str]]:
    """Schema records -> kernel VIPs, plus kernel key -> topic key, plus what was refused and why.

    A refused VIP is left out (never programmed half-way); one bad backend only drops that backend.
    `cache` (topic key -> last record and its conversion) is reused for records that did not
    change and rewritten in place: converting 10k records costs ~0.4 s, comparing them ~10 ms.
    """
    out: dict[VipKey, KernelVip] = {}
    keys: dict[VipKey, str] = {}
    refused: list[str] = []
    fresh: Converted = {}
    for name, vip in vips.items():
        hit = cache.get(name) if cache is not None else None
        kv, problems = (hit[1], hit[2]) if hit is not None and (hit[0] is vip or hit[0] == vip) else _kernel_vip(name, vip)
        fresh[name] = (vip, kv, problems)
        refused.extend(problems)
        if kv is not None:
            out[kv.key] = kv
            keys[kv.key] = name
    if cache is not None:
        cache.clear()
        cache.update(fresh)
    return out, keys, refused


@dataclass
class TableState:
    """One family's `wayfinder` table as read back. `blocks` maps ("chain", "mod3") etc. to the
    whitespace-normalised body of that block in the terse (element-free) listing."""

    exists: bool = False
    blocks: dict[tuple[str, str], str] = field(default_factory=dict)
    vip_ips: set[str] = field(default_factory=set)
    vips: dict[VipKey, str] = field(default_factory=dict)  # -> verdict text, "goto mod3"
    endpoints: dict[tuple[VipKey, int], Slot] = field(default_factory=dict)

    def kernel_vips(self) -> dict[VipKey, KernelVip | None]:
        """Every VIP with a `vips` element, rebuilt from its slots; None when it is malformed
        (verdict not `goto modK`, or a slot below K missing)."""
        out: dict[VipKey, KernelVip | None] = {}
        for key, verdict in self.vips.items():
            match = re.fullmatch(r"goto mod(\d+)", verdict)
            k = int(match.group(1)) if match else 0
            slots = [self.endpoints.get((key, i)) for i in range(k)]
            ok = match is not None and all(s is not None for s in slots)
            out[key] = KernelVip(key[0], key[1], key[2], tuple(slots)) if ok else None  # type: ignore[arg-type]
        return out


_BLOCK = re.compile(r"^\t(set|map|chain) (\S+) \{$")


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
        return _canonical_ip(v)
    return v


def table_state(listing: dict, terse: str) -> TableState:
    """Parse `nft -j list table` output (elements) and the terse text listing (structure)."""
    state = TableState(exists=True, blocks=structure_blocks(terse))
    for item in listing.get("nftables", []):
        obj = item.get("set") or item.get("map")
        if not obj:
            continue
        for elem in obj.get("elem", []):
            if obj["name"] == "vip_ips" and isinstance(elem, str):
                state.vip_ips.add(_value(elem))
            elif obj["name"] == "vips" and isinstance(elem, list):
                parts = [_value(p) for p in elem[0]["concat"]]
                verdict = " ".join(f"{v} {t['target']}" if isinstance(t, dict) else v for v, t in elem[1].items())
                state.vips[tuple(parts)] = verdict  # type: ignore[index]
            elif obj["name"] == "endpoints" and isinstance(elem, list):
                ip, proto, port, slot = (_value(p) for p in elem[0]["concat"])
                state.endpoints[((ip, proto, port), slot)] = tuple(_value(p) for p in elem[1]["concat"])  # type: ignore[assignment]
    return state
