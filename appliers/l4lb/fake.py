"""The kernel seam in memory, for tests of the l4lb role without root: our nftables tables as
data (one `TableState` per family), node routes as a set, and failures on demand.

A transaction takes the tables to the state its plan says, all at once or not at all, as
nftables commits one: the planner's text and that state are held equal by the golden tests
(tests/unit/l4lb_applier), so this fake exercises everything around the planner.
"""

from __future__ import annotations

from collections.abc import Iterable

from appliers.l4lb.kernel import NftError
from appliers.l4lb.model import FAMILIES, KernelVip, TableState, VipKey
from appliers.l4lb.plan import Flush, Plan, advance


def _copy(state: TableState) -> TableState:
    return TableState(state.exists, dict(state.blocks), set(state.vip_ips), dict(state.vips), dict(state.endpoints))


class FakeKernel:
    def __init__(self) -> None:
        self.tables: dict[str, TableState] = {family.name: TableState() for family in FAMILIES}
        self.routes: set[str] = set()
        self.transactions: list[Plan] = []  # every committed plan, in order
        self.reads = 0
        self.fail_next = 0  # how many of the next transactions to refuse

    def read(self) -> dict[str, TableState]:
        self.reads += 1
        return {name: _copy(state) for name, state in self.tables.items()}

    def read_elements(self) -> dict[str, TableState]:
        """As the netlink reader sees the tables: their elements, no structure."""
        return {name: TableState(state.exists, {}, set(state.vip_ips), dict(state.vips), dict(state.endpoints))
                for name, state in self.tables.items()}

    def transact(self, plan: Plan) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise NftError("refused by the fake kernel")
        tables = advance({name: _copy(state) for name, state in self.tables.items()}, plan)
        self.tables = {name: _copy(state) for name, state in tables.items()}
        self.transactions.append(plan)

    def run(self, text: str) -> None:
        raise NotImplementedError("the fake kernel commits plans (transact), not nft text")

    def flush(self, flushes: Iterable[Flush]) -> int:
        return 0

    def owned_routes(self) -> set[str]:
        return set(self.routes)

    def change_routes(self, add: Iterable[str], delete: Iterable[str], dev: str) -> None:
        self.routes.difference_update(delete)
        self.routes.update(add)

    def close(self) -> None:
        pass

    # -- for tests -------------------------------------------------------------------------

    def vips(self) -> dict[VipKey, KernelVip | None]:
        """Every VIP the tables hold, rebuilt from their elements."""
        return {key: vip for state in self.tables.values() for key, vip in state.kernel_vips().items()}

    def drop(self, key: VipKey) -> None:
        """Drift: someone deleted a VIP's elements by hand."""
        for state in self.tables.values():
            if state.vips.pop(key, None) is not None:
                for slot in [e for e in state.endpoints if e[0] == key]:
                    del state.endpoints[slot]
