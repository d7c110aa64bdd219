"""Desired against actual: the smallest list of operations that takes this node's kernel (and
its CNI configs) from one to the other. Pure.

Every addition and update comes before any deletion, and nothing is deleted unless the role
is complete (``may_remove``): before that, the node may hold only part of the lease table, and
a peer it has not read yet must keep working. Updates are ``replace`` operations (a neighbour
whose MAC changed, a route whose gateway changed), which never interrupt the entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from appliers.overlay.model import Nat, NodeState, Vtep, without_covered


@dataclass(frozen=True)
class CreateVtep:
    vtep: Vtep


@dataclass(frozen=True)
class SetVtep:
    """The MAC, MTU and up state of an existing device with the right tunnel."""

    vtep: Vtep


@dataclass(frozen=True)
class DeleteVtep:
    name: str


@dataclass(frozen=True)
class AddAddress:
    cidr: str


@dataclass(frozen=True)
class DeleteAddress:
    cidr: str


@dataclass(frozen=True)
class ReplaceNeighbour:
    ip: str
    mac: str


@dataclass(frozen=True)
class DeleteNeighbour:
    ip: str


@dataclass(frozen=True)
class ReplaceFdb:
    mac: str
    dst: str


@dataclass(frozen=True)
class DeleteFdb:
    mac: str
    dst: str


@dataclass(frozen=True)
class ReplaceRoute:
    table: int
    dst: str
    via: str


@dataclass(frozen=True)
class DeleteRoute:
    table: int
    dst: str


@dataclass(frozen=True)
class AddRule:
    src: str
    table: int


@dataclass(frozen=True)
class DeleteRule:
    src: str
    table: int


@dataclass(frozen=True)
class ReplaceNat:
    nat: Nat


@dataclass(frozen=True)
class DeleteNat:
    pass


@dataclass(frozen=True)
class AddNatOverlay:
    """Subnets of leases without `network` into the masquerade's overlay sets (a partial pass:
    the table stays)."""

    cidrs: tuple[str, ...]


@dataclass(frozen=True)
class DeleteNatOverlay:
    cidrs: tuple[str, ...]


@dataclass(frozen=True)
class WriteConfig:
    """A CNI network config file (name inside the overlay dir) and its whole content."""

    name: str
    content: bytes


@dataclass(frozen=True)
class RemoveConfig:
    name: str


KernelOp = (CreateVtep | SetVtep | DeleteVtep | AddAddress | DeleteAddress | ReplaceNeighbour | DeleteNeighbour
            | ReplaceFdb | DeleteFdb | ReplaceRoute | DeleteRoute | AddRule | DeleteRule | ReplaceNat | DeleteNat
            | AddNatOverlay | DeleteNatOverlay)
FileOp = WriteConfig | RemoveConfig


def _changed(desired: Mapping, actual: Mapping) -> list:
    return sorted(key for key, value in desired.items() if actual.get(key) != value)


def _extra(desired: Mapping | frozenset, actual: Mapping | frozenset) -> list:
    return sorted(key for key in actual if key not in desired)


def plan_kernel(desired: NodeState, actual: NodeState, may_remove: bool) -> list[KernelOp]:
    """The operations, updates first; deletions only when `may_remove`."""
    updates: list[KernelOp] = []
    deletions: list[KernelOp] = []
    if desired.vtep is None:
        # No lease of our own (any more): nothing to program peers with. Once complete, the
        # device goes, and with it its addresses, neighbours, FDB and routes.
        if may_remove:
            deletions += [DeleteRule(src, table) for src, table in sorted(actual.rules)]
            if actual.nat is not None:
                deletions.append(DeleteNat())
            if actual.vtep is not None:
                deletions.append(DeleteVtep(actual.vtep.name))
        return deletions
    if actual.vtep is None or not actual.vtep.same_tunnel(desired.vtep):
        if actual.vtep is not None:
            updates.append(DeleteVtep(actual.vtep.name))  # a tunnel's VNI, port or local are fixed
        updates.append(CreateVtep(desired.vtep))
        # The new device starts empty; rules and NAT do not hang on it.
        actual = NodeState(None, frozenset(), {}, {}, {}, actual.rules, actual.nat)
    elif actual.vtep != desired.vtep:
        updates.append(SetVtep(desired.vtep))
    updates += [AddAddress(cidr) for cidr in sorted(desired.addresses - actual.addresses)]
    updates += [AddRule(src, table) for src, table in sorted(desired.rules - actual.rules)]
    updates += _peer_updates(desired, actual)
    nat = desired.nat
    if nat is not None and actual.nat is not None and not may_remove:
        # Not complete: keep what the kernel has too (a network we have not read yet), less what
        # a wanted network covers (an interval set refuses overlapping elements; a subnet of
        # an older processor's leases inside its network adds nothing).
        nat = Nat(without_covered(nat.sources | actual.nat.sources), without_covered(nat.overlay | actual.nat.overlay))
    if nat is not None and nat != actual.nat:
        updates.append(ReplaceNat(nat))
    if may_remove:
        deletions += _peer_deletions(desired, actual)
        deletions += [DeleteRule(src, table) for src, table in _extra(desired.rules, actual.rules)]
        deletions += [DeleteAddress(cidr) for cidr in _extra(desired.addresses, actual.addresses)]
    return updates + deletions


def plan_touched(desired: NodeState, actual: NodeState, may_remove: bool) -> list[KernelOp]:
    """A partial pass: `desired` and `actual` hold only the entries the changed leases touch
    (appliers.overlay.index), so whatever is not in them, every other peer, is never planned,
    let alone removed. The device, its addresses, the rule and the masquerade's sources belong
    to this node's own lease, which a partial pass never covers. The overlay sets hold the
    overlay networks, which a partial pass never changes either (index.changes_networks);
    only an older processor's per-agent subnets change them here, by element."""
    want = desired.nat.overlay if desired.nat else frozenset()
    have = actual.nat.overlay if actual.nat else frozenset()
    updates: list[KernelOp] = _peer_updates(desired, actual)
    if want - have:
        updates.append(AddNatOverlay(tuple(sorted(want - have))))
    if not may_remove:
        return updates
    deletions = _peer_deletions(desired, actual)
    if have - want:
        deletions.append(DeleteNatOverlay(tuple(sorted(have - want))))
    return updates + deletions


def _peer_updates(desired: NodeState, actual: NodeState) -> list[KernelOp]:
    return [*(ReplaceNeighbour(ip, desired.neighbours[ip]) for ip in _changed(desired.neighbours, actual.neighbours)),
            *(ReplaceFdb(mac, desired.fdb[mac]) for mac in _changed(desired.fdb, actual.fdb)),
            *(ReplaceRoute(table, dst, desired.routes[(table, dst)])
              for table, dst in _changed(desired.routes, actual.routes))]


def _peer_deletions(desired: NodeState, actual: NodeState) -> list[KernelOp]:
    return [*(DeleteRoute(table, dst) for table, dst in _extra(desired.routes, actual.routes)),
            *(DeleteFdb(mac, actual.fdb[mac]) for mac in _extra(desired.fdb, actual.fdb)),
            *(DeleteNeighbour(ip) for ip in _extra(desired.neighbours, actual.neighbours))]


def plan_files(desired: Mapping[str, bytes], actual: Mapping[str, bytes], may_remove: bool) -> list[FileOp]:
    """CNI config files: write what differs, remove ours that no lease asks for (once complete)."""
    ops: list[FileOp] = [WriteConfig(name, desired[name]) for name in _changed(desired, actual)]
    if may_remove:
        ops += [RemoveConfig(name) for name in _extra(desired, actual)]
    return ops
