"""Desired VIPs + what the kernel holds -> the smallest nft transaction. Pure.

Two shapes of change, both ONE transaction text:
- full rebuild of a family's table (`add table; delete table; table {...}`) when the table is
  missing or its fixed part (sets, maps, chains and rules) is not exactly ours, or a VIP needs
  more slots than the sets k1..kM offer (see render.py for why they are not added in place);
- otherwise element-only deletes and adds: per changed VIP its slot-set membership (out of
  the old kK, into the new one), its endpoint slots that differ, and the stale slots above
  its new K.

`plan` compares every VIP (what repairs drift: ~66 ms at 10k VIPs); `plan_changes` compares
only the VIPs that changed against the state a previous plan left, and shares the comparison
and the text with `plan`, so both emit the same transaction for the same change.

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
from appliers.l4lb.model import (
    FAMILIES, IP, TABLE, Family, KernelVip, Slot, TableState, VipKey, family_of, ip_order, key_order,
)


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
    # family -> state once applied; for a partial plan only the elements of `scope`
    after: dict[str, TableState] = field(default_factory=dict)
    # partial plans only: family -> (the VIPs planned, the `vip_ips` entries they decide)
    scope: dict[str, tuple[list[VipKey], set[str]]] | None = None

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


def plan_changes(
    desired: Mapping[VipKey, KernelVip], actual: Mapping[str, TableState], keys: Iterable[VipKey], initialized: bool
) -> Plan | None:
    """What `plan` would emit when only `keys` changed, at the cost of those keys alone.

    `actual` must be a state `plan` produced (`Plan.after`, advanced by `advance` since), so
    everything outside `keys` is known to be as desired; `desired` needs entries for `keys`
    only (absent: not desired). None when the change needs a table created, replaced or
    deleted (a first IPv6 VIP, more slots than the sets k1..kM, the last IPv6 VIP gone):
    then call `plan` with the whole desired table.
    """
    out = Plan(scope={})
    by_family: dict[Family, list[VipKey]] = {}
    for key in sorted(set(keys), key=key_order):
        if initialized or key in desired:  # before that, what the kernel has stays (see plan)
            by_family.setdefault(family_of(key[0]), []).append(key)
    for family, scope in by_family.items():
        have = actual.get(family.name) or TableState()
        target = {k: desired[k] for k in scope if k in desired}
        if not _structure_ok(family, have, target):
            return None
        by_ip, slots = have.index()
        ips = {k[0] for k in scope}
        before = TableState(
            exists=True,
            vip_ips=ips & have.vip_ips,
            vips={k: have.vips[k] for k in scope if k in have.vips},
            endpoints={(k, i): have.endpoints[(k, i)] for k in scope for i in slots.get(k, ())},
        )
        after = _state_of(target)
        # An address stays in `vip_ips` while another VIP on it is programmed.
        after.vip_ips |= {ip for ip in ips if by_ip.get(ip, set()).difference(scope)}
        if not initialized:
            after.vip_ips |= before.vip_ips
        if family is not IP and initialized and not after.vips and len(have.vips) == len(before.vips):
            return None  # maybe the last IPv6 VIP: `plan` decides whether the table goes
        out.text += _element_commands(family, before, after, _changes(out, before, after, target))
        out.after[family.name] = after
        out.scope[family.name] = (scope, ips)
    return out


def advance(actual: dict[str, TableState], p: Plan) -> dict[str, TableState]:
    """The state once `p` committed. A partial plan patches `actual` in place (see
    TableState.replace); a full plan's `after` is the whole state."""
    if p.scope is None:
        return {f.name: p.after[f.name] for f in FAMILIES}
    for name, (scope, ips) in p.scope.items():
        actual[name].replace(scope, ips, p.after[name])
    return actual


def _structure_ok(family: Family, have: TableState, target: Mapping[VipKey, KernelVip]) -> bool:
    if not have.exists:
        return False
    sets = {int(name[1:]) for kind, name in have.blocks if kind == "set" and re.fullmatch(r"k\d+", name)}
    expected = render.expected_blocks(family, max(sets, default=0))
    needed = {len(v.slots) for v in target.values() if v.slots}
    return have.blocks == expected and needed <= sets


def _state_of(target: Mapping[VipKey, KernelVip]) -> TableState:
    """The elements `target` needs; VIPs without slots get none (traffic falls through)."""
    return TableState(
        exists=True,
        vip_ips={v.ip for v in target.values() if v.slots},
        vips={k: f"k{len(v.slots)}" for k, v in target.items() if v.slots},
        endpoints={(k, i): b for k, v in target.items() for i, b in enumerate(v.slots)},
    )


def _diff(old: dict, new: dict) -> tuple[list, list]:
    """(keys to delete, keys to add): a changed value is both (see _element_commands)."""
    return [k for k, v in old.items() if new.get(k) != v], [k for k, v in new.items() if old.get(k) != v]


def _changes(out: Plan, have: TableState, after: TableState, target: Mapping[VipKey, KernelVip]) -> tuple:
    """Which VIPs change or go, and which UDP backends left (their flows get flushed).
    Returns the element diffs of `vips` and `endpoints` for _element_commands."""
    diffs = _diff(have.vips, after.vips), _diff(have.endpoints, after.endpoints)
    (vips_del, vips_add), (eps_del, eps_add) = diffs
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
    return diffs


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
    diffs = _changes(out, have, after, target)
    if family is not IP and not wanted and initialized:
        out.text += f"delete table {family.name} {TABLE}\n"
        out.rebuilt.append(family.name)
        out.after[family.name] = TableState()
    elif rebuild:
        sets = render.set_count(target.values())
        out.text += render.render_rebuild(family, target.values(), sets)
        out.rebuilt.append(family.name)
        after.blocks = render.expected_blocks(family, sets)
        out.after[family.name] = after
    else:
        after.blocks = dict(have.blocks)
        out.text += _element_commands(family, have, after, diffs)
        out.after[family.name] = after


def _element_commands(family: Family, have: TableState, after: TableState, diffs: tuple) -> str:
    """Deletes before adds: a changed element is deleted and re-added (nft `add` refuses an
    existing key with other data; a VIP that moves from k3 to k2 leaves one set for the other).
    The order inside one transaction is invisible to packets."""
    f = f"{family.name} {TABLE}"
    vips, eps = diffs
    ips = sorted(have.vip_ips - after.vip_ips, key=ip_order), sorted(after.vip_ips - have.vip_ips, key=ip_order)

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

    def per_set(keys: list[VipKey], sets: dict[VipKey, str]) -> list[tuple[str, list[str]]]:
        members: dict[str, list[str]] = {}
        for key in sorted(keys, key=key_order):
            for name in sets[key].split(","):
                members.setdefault(name, []).append(vip_text(key))
        return sorted(members.items(), key=lambda item: int(item[0][1:]))

    for name, items in per_set(vips[0], have.vips):
        emit("delete", name, items)
    emit("delete", "endpoints", [ep_text(e) for e in sorted(eps[0], key=ep_order)])
    emit("delete", "vip_ips", ips[0])
    emit("add", "vip_ips", ips[1])
    emit("add", "endpoints", [f"{ep_text(e)} : {after.endpoints[e][0]} . {after.endpoints[e][1]}" for e in sorted(eps[1], key=ep_order)])
    for name, items in per_set(vips[1], after.vips):
        emit("add", name, items)
    return "".join(line + "\n" for line in lines)


def covered(ranges: Iterable[str], ips: Iterable[str]) -> bool:
    """Every address lies in one of the ranges (so needs no host route of its own)."""
    nets = [ipaddress.ip_network(r) for r in ranges]
    return all(any(a in n for n in nets if n.version == a.version) for a in map(ipaddress.ip_address, ips))


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
