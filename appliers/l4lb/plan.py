"""Desired VIPs + what the kernel holds -> the smallest nft transaction. Pure.

Two shapes of change, both ONE transaction text:
- full rebuild of a family's table (`add table; delete table; table {...}`) when the table is
  missing or its fixed part (maps, hook chains, modK chains) is not exactly ours, or a VIP needs
  more slots than the modK chains offer (see render.py for why chains are not added in place);
- otherwise element-only deletes and adds: per changed VIP its `vips` verdict, its endpoint
  slots that differ, and the stale slots above its new K.

Nothing is pruned before `initialized` (cilium's rule): until the desired state is known to be
complete, VIPs that the kernel has and the desired state lacks are kept, even in a rebuild.
UDP backends that leave a VIP (not drained to weight 0: removed) are listed for a conntrack
flush after the transaction; otherwise a client that keeps sending from one port stays pinned
to the dead backend by its conntrack entry.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from appliers.l4lb import render
from appliers.l4lb.model import FAMILIES, IP, TABLE, Family, KernelVip, Slot, TableState, VipKey, ip_order, key_order


@dataclass(frozen=True)
class Flush:
    """Delete the UDP conntrack entries to vip:port whose backend (reply source) is not in `keep`
    (all of them when `keep` is empty: the VIP is gone). Drained backends stay in `keep`."""

    vip: str
    port: int
    keep: frozenset[Slot] = frozenset()


@dataclass
class Plan:
    text: str = ""
    rebuilt: list[str] = field(default_factory=list)  # families whose table is replaced whole
    changed: list[VipKey] = field(default_factory=list)  # now programmed as desired
    removed: list[VipKey] = field(default_factory=list)  # no longer in `vips`
    flushes: list[Flush] = field(default_factory=list)
    after: dict[str, TableState] = field(default_factory=dict)  # family -> state once applied

    @property
    def converged(self) -> bool:
        return not self.text


def plan(desired: Mapping[VipKey, KernelVip], actual: Mapping[str, TableState], initialized: bool) -> Plan:
    out = Plan()
    for family in FAMILIES:
        wanted = {k: v for k, v in desired.items() if v.family == family}
        have = actual.get(family.name) or TableState()
        if family is not IP and not wanted and not have.exists:
            out.after[family.name] = have  # create the ip6 table only once there is an IPv6 VIP
            continue
        _plan_family(out, family, wanted, have, initialized)
    return out


def _structure_ok(family: Family, have: TableState, target: Mapping[VipKey, KernelVip]) -> bool:
    if not have.exists:
        return False
    mods = {int(name[3:]) for kind, name in have.blocks if kind == "chain" and re.fullmatch(r"mod\d+", name)}
    expected = render.expected_blocks(family, max(mods, default=0))
    needed = {len(v.slots) for v in target.values() if v.slots}
    return have.blocks == expected and needed <= mods


def _state_of(target: Mapping[VipKey, KernelVip]) -> TableState:
    """The elements `target` needs; VIPs without slots get none (traffic falls through)."""
    return TableState(
        exists=True,
        vip_ips={v.ip for v in target.values() if v.slots},
        vips={k: f"goto mod{len(v.slots)}" for k, v in target.items() if v.slots},
        endpoints={(k, i): b for k, v in target.items() for i, b in enumerate(v.slots)},
    )


def _diff(old: dict, new: dict) -> tuple[list, list]:
    """(keys to delete, keys to add): a changed value is both (see _element_commands)."""
    return [k for k, v in old.items() if new.get(k) != v], [k for k, v in new.items() if old.get(k) != v]


def _plan_family(out: Plan, family: Family, wanted: dict[VipKey, KernelVip], have: TableState, initialized: bool) -> None:
    target = dict(wanted)
    if not initialized:  # keep what we cannot yet prove stale
        target.update({k: v for k, v in have.kernel_vips().items() if k not in wanted and v is not None})
    rebuild = not _structure_ok(family, have, target)
    after = _state_of(target)
    if not initialized and not rebuild:  # leftovers, malformed ones included, stay as they are
        after.vip_ips |= have.vip_ips
        after.vips.update({k: t for k, t in have.vips.items() if k not in target})
        after.endpoints.update({e: b for e, b in have.endpoints.items() if e[0] not in target})
    vips_del, vips_add = _diff(have.vips, after.vips)
    eps_del, eps_add = _diff(have.endpoints, after.endpoints)

    left: dict[VipKey, set[Slot]] = {}  # backends whose slot is deleted or overwritten, per VIP
    for e in eps_del:
        left.setdefault(e[0], set()).add(have.endpoints[e])
    for key in sorted({*vips_del, *vips_add, *left, *(e[0] for e in eps_add)}, key=key_order):
        if key in after.vips:
            out.changed.append(key)
        elif key in have.vips:
            out.removed.append(key)
        v = target.get(key)
        keep = frozenset(v.slots) | v.drained if v is not None else frozenset()
        if key[1] == "udp" and left.get(key, set()) - keep:
            out.flushes.append(Flush(key[0], key[2], keep))

    if family is not IP and not wanted and initialized:
        out.text += f"delete table {family.name} {TABLE}\n"
        out.rebuilt.append(family.name)
        out.after[family.name] = TableState()
    elif rebuild:
        chains = render.chain_count(target.values())
        out.text += render.render_rebuild(family, target.values(), chains)
        out.rebuilt.append(family.name)
        after.blocks = render.expected_blocks(family, chains)
        out.after[family.name] = after
    else:
        after.blocks = dict(have.blocks)
        out.text += _element_commands(
            family, have, after, (vips_del, vips_add), (eps_del, eps_add),
            (sorted(have.vip_ips - after.vip_ips, key=ip_order), sorted(after.vip_ips - have.vip_ips, key=ip_order)),
        )
        out.after[family.name] = after


def _element_commands(family: Family, have: TableState, after: TableState, vips, eps, ips) -> str:
    """Deletes before adds: a changed element is deleted and re-added (nft `add` refuses an
    existing key with other data). The order inside one transaction is invisible to packets."""
    f = f"{family.name} {TABLE}"

    def vip_text(key: VipKey) -> str:
        return f"{key[0]} . {key[1]} . {key[2]}"

    def ep_text(e: tuple[VipKey, int]) -> str:
        return f"{vip_text(e[0])} . {e[1]}"

    def ep_order(e: tuple[VipKey, int]) -> tuple:
        return (key_order(e[0]), e[1])

    lines = []

    def emit(verb: str, name: str, items: list[str]) -> None:
        if items:
            lines.append(f"{verb} element {f} {name} {{ " + ", ".join(items) + " }")

    emit("delete", "vips", [vip_text(k) for k in sorted(vips[0], key=key_order)])
    emit("delete", "endpoints", [ep_text(e) for e in sorted(eps[0], key=ep_order)])
    emit("delete", "vip_ips", ips[0])
    emit("add", "vip_ips", ips[1])
    emit("add", "endpoints", [f"{ep_text(e)} : {after.endpoints[e][0]} . {after.endpoints[e][1]}" for e in sorted(eps[1], key=ep_order)])
    emit("add", "vips", [f"{vip_text(k)} : {after.vips[k]}" for k in sorted(vips[1], key=key_order)])
    return "".join(line + "\n" for line in lines)


def plan_routes(ranges: Iterable[str], vip_ips: Iterable[str], owned: set[str], initialized: bool) -> tuple[list[str], list[str]]:
    """Routes so the node itself can reach VIPs: connect() fails with ENETUNREACH before the
    output-hook DNAT runs when no route covers the VIP. One route per configured VIP range, plus
    a host route for each VIP outside every range. Returns (add, delete), deletes only once
    initialized, like everything else."""
    nets = [ipaddress.ip_network(r) for r in ranges]
    want = {str(n) for n in nets}
    for ip in vip_ips:
        addr = ipaddress.ip_address(ip)
        if not any(addr in n for n in nets if n.version == addr.version):
            want.add(str(ipaddress.ip_network(addr)))
    return sorted(want - owned), sorted(owned - want) if initialized else []
