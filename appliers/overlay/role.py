"""The node's overlay role: the `overlay` lease table into this node's kernel (the VXLAN device,
its peers, the table-42 rule, the masquerade table) and its CNI configs, on the reconcile loop
(runtime.reconcile).

Every pass reads the whole overlay state back (one device, a few entries per peer) and plans
against all leases: a pass over one changed lease costs the same as a full one, and a full
pass (the periodic resync, or after a failure) repairs whatever drifted. Nothing is removed
before the role is complete, so a restarting node leaves every entry it finds in place
until it has read the whole table; entries already right are never touched, so traffic in
flight, through the tunnel or a container's bridge, keeps flowing across a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from appliers.overlay.cni import config_files
from appliers.overlay.configdir import ConfigDir
from appliers.overlay.model import VTEP_MTU, NodeState, desired_state, own_leases
from appliers.overlay.plan import FileOp, KernelOp, RemoveConfig, WriteConfig, plan_files, plan_kernel
from runtime.reconcile import Role, Scope
from schemas import codec
from schemas.overlay import Lease, lease_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Observed:
    kernel: NodeState
    files: Mapping[str, bytes]  # our CNI configs, by file name


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

    def decode(self, key: str, value: bytes) -> Lease:
        lease = codec.decode(value, Lease)  # a ValidationError is a ValueError: refused
        if key != lease_key(lease.overlay, lease.agent_id):
            raise ValueError(f"lease of {lease.overlay}/{lease.agent_id} under the key {key!r}")
        return lease

    def observe(self, scope: Scope) -> Observed:
        return Observed(self.kernel.read(), self.config_dir.read() if self.config_dir else {})

    def plan(self, desired: Mapping[str, Lease], actual: Observed, scope: Scope) -> OverlayPlan | None:
        leases = list(desired.values())
        state = desired_state(leases, self.agent_ip, self.vtep_mtu)
        files = config_files(own_leases(leases, self.agent_ip)) if self.config_dir else {}
        plan = OverlayPlan(plan_kernel(state, actual.kernel, scope.may_remove),
                           plan_files(files, actual.files, scope.may_remove))
        return plan or None

    def apply(self, plan: OverlayPlan) -> None:
        if plan.kernel:
            self.kernel.apply(plan.kernel)
        for op in plan.files:
            if isinstance(op, WriteConfig):
                self.config_dir.write(op.name, op.content)
            elif isinstance(op, RemoveConfig):
                self.config_dir.remove(op.name)
        self.operations += len(plan.kernel) + len(plan.files)
        log.info("overlay: applied %d change(s): %s", len(plan.kernel) + len(plan.files),
                 ", ".join(type(op).__name__ for op in [*plan.kernel, *plan.files][:8]))

    async def close(self) -> None:
        self.kernel.close()

    def state(self, desired: Mapping[str, Lease]) -> NodeState:
        """What this node's kernel should hold for `desired` (for `wayfinder overlay`)."""
        return desired_state(desired.values(), self.agent_ip, self.vtep_mtu)
