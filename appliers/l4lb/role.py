"""The node's l4lb role: the ``vips`` table into the node's kernel (one nftables table named
``wayfinder`` per family), through the reconcile loop (runtime.reconcile).

The four steps delegate to `L4Applier`, which keeps what makes a steady-state change cheap:
the desired VIPs in kernel form per topic key (one changed record, one conversion), and the
kernel state read back at start, after a failure and on every full pass, advanced by each
committed transaction in between (reading 10k VIPs back costs ~1.3 s, one change ~0.3 ms;
see applier.py). A pass over a few keys plans only those (partial planning).
"""

from __future__ import annotations

from collections.abc import Mapping

from appliers.l4lb.applier import L4Applier, Prepared
from appliers.l4lb.kernel import Kernel
from appliers.l4lb.model import TableState
from runtime.reconcile import Role, Scope
from schemas import codec
from schemas.l4lb import Vip


class ApplyFailed(RuntimeError):
    pass


class L4lbRole(Role[Vip, dict[str, TableState], Prepared]):
    name = "l4lb"
    threaded = True  # nft and netlink calls block

    def __init__(self, kernel: Kernel, *, route_dev: str | None = None, vip_ranges: tuple[str, ...] = ()) -> None:
        self.kernel = kernel
        self.applier = L4Applier(kernel, route_dev=route_dev, vip_ranges=vip_ranges)

    def decode(self, key: str, value: bytes) -> Vip:
        return codec.decode(value, Vip)  # a ValidationError is a ValueError: refused

    def observe(self, scope: Scope) -> dict[str, TableState]:
        return self.applier.observe(full=scope.full)

    def plan(self, desired: Mapping[str, Vip], actual: dict[str, TableState], scope: Scope) -> Prepared | None:
        """The applier's kernel-form index follows `desired` (only the keys in scope, unless
        the pass is full), then the planners (appliers/l4lb/plan.py, pure) compare it with
        `actual`. Removals only once `scope.may_remove` (the applier's `initialized`)."""
        if scope.full:
            self.applier.set_desired(desired, complete=scope.may_remove)
        else:
            self.applier.update({key: desired.get(key) for key in scope.keys}, complete=scope.may_remove)
        if not scope.full and not self.applier.dirty:
            return None  # the changed keys cancel out
        # A full pass goes to apply even when converged: the applier redoes its bookkeeping
        # (which keys the kernel holds since when) from the state it just read back.
        return self.applier.prepare(actual)

    def apply(self, prepared: Prepared) -> None:
        record = self.applier.commit(prepared)
        if not record.ok:
            raise ApplyFailed(record.error)

    async def close(self) -> None:
        self.kernel.close()

    def in_kernel(self, desired: Mapping[str, Vip]) -> dict[str, Vip]:
        """The desired VIPs the kernel holds as desired now, by topic key."""
        applied = self.applier.applied_at
        return {key: vip for key, vip in desired.items() if key in applied}
