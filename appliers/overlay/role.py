"""The node's overlay role: the `overlay` lease table into this node's kernel (the VXLAN device,
its peers, the table-42 rule, the masquerade table) and its CNI configs, on the reconcile loop
(runtime.reconcile).

A change costs what it touches. A pass over a few changed peer leases (the loop's partial
scope) asks the lease index (index.py) which kernel entries those peers asked for before and
ask for now, reads back only those (kernel.read_touched) and plans only them (plan_touched):
another peer's entries are neither read nor planned, so never removed. The exceptions are
what the kernel cannot answer for alone (kernel.read_touched says why): the table-42 route
and the masquerade's overlay-set elements; a partial pass takes them from the last full read,
advanced by every apply since. The overlay sets and the rule name the overlay networks, so a
peer's pass leaves them alone. A change of this node's own lease or of the set of overlay
networks, a missing device, and every full pass (the start, the periodic resync, after a failure) read everything
back and plan against all leases, which repairs whatever drifted. Nothing is removed
before the role is complete, so a restarting node leaves every entry it finds in place
until it has read the whole table; entries already right are never touched, so traffic in
flight, through the tunnel or a container's bridge, keeps flowing across a restart.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from appliers.overlay.cni import config_files
from appliers.overlay.configdir import ConfigDir
from appliers.overlay.index import LeaseIndex, Touched
from appliers.overlay.model import OVERLAY_TABLE, VTEP_MTU, Nat, NodeState, desired_state, own_leases
from appliers.overlay.plan import (AddNatOverlay, CreateVtep, DeleteNat, DeleteNatOverlay, DeleteRoute, DeleteVtep,
                                   ReplaceNat, FileOp, KernelOp, RemoveConfig, ReplaceRoute, WriteConfig, plan_files,
                                   plan_kernel, plan_touched)
from runtime.reconcile import Role, Scope
from schemas import codec
from schemas.overlay import Lease, lease_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Observed:
    kernel: NodeState
    files: Mapping[str, bytes]  # our CNI configs, by file name
    touched: Touched | None = None  # a partial read: only these entries (None: everything)


@dataclass(frozen=True)
class OverlayPlan:
    kernel: list[KernelOp]
    files: list[FileOp]

    def __bool__(self) -> bool:
        return bool(self.kernel or self.files)


class OverlayRole(Role[Lease, Observed, OverlayPlan]):
    name = "overlay"
    threaded = True  # netlink, nft and file writes block

    def __init__(self, kernel, agent_ip: str, config_dir: ConfigDir | None = None, *,
                 vtep_mtu: int = VTEP_MTU) -> None:
        self.kernel = kernel  # appliers.overlay.kernel.OverlayKernel, or the fake
        self.agent_ip = agent_ip
        self.config_dir = config_dir  # None: write no CNI configs
        self.vtep_mtu = vtep_mtu
        self.operations = 0  # kernel and file operations applied since start
        self.partial_passes = 0  # passes that read and planned only the touched entries
        self.index = LeaseIndex(agent_ip)
        # The loop's table, as the last plan saw it: a partial observe needs the changed leases'
        # new values to know which entries they touch (observe is given only the keys).
        self._table: Mapping[str, Lease] | None = None
        self._has_vtep = False  # the last full plan gave this node a VTEP
        # Table-42 routes and overlay-set elements as of the last full read, advanced by every
        # apply (see the docstring).
        self._overlay_routes: dict[tuple[int, str], str] = {}
        self._overlay_elements: set[str] = set()

    def decode(self, key: str, value: bytes) -> Lease:
        lease = codec.decode(value, Lease)  # a ValidationError is a ValueError: refused
        if key != lease_key(lease.overlay, lease.agent_id):
            raise ValueError(f"lease of {lease.overlay}/{lease.agent_id} under the key {key!r}")
        return lease

    def observe(self, scope: Scope) -> Observed:
        if not scope.full and self._table is not None and self._has_vtep \
                and self.index.only_peers(scope.keys, self._table) \
                and not self.index.changes_networks(scope.keys, self._table):
            touched = self.index.touched(scope.keys, self._table)
            found = self.kernel.read_touched(touched)
            if found is not None:
                routes = {key: self._overlay_routes[key] for key in touched.routes if key in self._overlay_routes}
                nat = Nat(frozenset(), frozenset(self._overlay_elements & touched.overlay))
                return Observed(dataclasses.replace(found, routes={**found.routes, **routes}, nat=nat), {}, touched)
        return Observed(self.kernel.read(), self.config_dir.read() if self.config_dir else {})

    def plan(self, desired: Mapping[str, Lease], actual: Observed, scope: Scope) -> OverlayPlan | None:
        self._table = desired
        if actual.touched is not None:
            # Only peers changed: this node's files (its own leases) did not.
            self.index.update(scope.keys, desired)
            self.partial_passes += 1
            plan = OverlayPlan(plan_touched(self.index.desired(actual.touched), actual.kernel, scope.may_remove), [])
            return plan or None
        leases = list(desired.values())
        self.index.rebuild(desired)
        state = desired_state(leases, self.agent_ip, self.vtep_mtu)
        self._has_vtep = state.vtep is not None
        self._overlay_routes = {key: via for key, via in actual.kernel.routes.items() if key[0] == OVERLAY_TABLE}
        self._overlay_elements = set(actual.kernel.nat.overlay) if actual.kernel.nat else set()
        files = config_files(own_leases(leases, self.agent_ip)) if self.config_dir else {}
        plan = OverlayPlan(plan_kernel(state, actual.kernel, scope.may_remove),
                           plan_files(files, actual.files, scope.may_remove))
        return plan or None

    def apply(self, plan: OverlayPlan) -> None:
        if plan.kernel:
            self.kernel.apply(plan.kernel)
            self._advance_index(plan.kernel)
        for op in plan.files:
            if isinstance(op, WriteConfig):
                self.config_dir.write(op.name, op.content)
            elif isinstance(op, RemoveConfig):
                self.config_dir.remove(op.name)
        self.operations += len(plan.kernel) + len(plan.files)
        log.info("overlay: applied %d change(s): %s", len(plan.kernel) + len(plan.files),
                 ", ".join(type(op).__name__ for op in [*plan.kernel, *plan.files][:8]))

    def _advance_index(self, applied: list[KernelOp]) -> None:
        for op in applied:
            if isinstance(op, ReplaceNat):
                self._overlay_elements = set(op.nat.overlay)
            elif isinstance(op, DeleteNat):
                self._overlay_elements.clear()
            elif isinstance(op, AddNatOverlay):
                self._overlay_elements.update(op.cidrs)
            elif isinstance(op, DeleteNatOverlay):
                self._overlay_elements.difference_update(op.cidrs)
            elif isinstance(op, (CreateVtep, DeleteVtep)):
                self._overlay_routes.clear()  # a route through the device goes with it
            elif isinstance(op, ReplaceRoute) and op.table == OVERLAY_TABLE:
                self._overlay_routes[(op.table, op.dst)] = op.via
            elif isinstance(op, DeleteRoute) and op.table == OVERLAY_TABLE:
                self._overlay_routes.pop((op.table, op.dst), None)

    async def close(self) -> None:
        self.kernel.close()

    def state(self, desired: Mapping[str, Lease]) -> NodeState:
        """What this node's kernel should hold for `desired` (for `wayfinder overlay`)."""
        return desired_state(desired.values(), self.agent_ip, self.vtep_mtu)
