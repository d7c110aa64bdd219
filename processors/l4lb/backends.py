"""The backends of one VIP in one address family, kept in their published order as tasks come
and go (pure).

``derive.backends_of`` builds the same list from scratch: one backend per ip:port (the highest
weight wins, then the smallest task id), in address order. Rebuilding it on every change
costs as much as the VIP is large; here an offer is added or withdrawn in O(log n) Python
steps, and only the one ip:port it belongs to is chosen again. The published list is a copy
of ``backends`` (a C-level copy, once per batch and VIP).
"""

from __future__ import annotations

from bisect import bisect_left

from processors.l4lb.contributions import Contribution, address_order
from schemas.l4lb import Backend

Slot = tuple[str, int]  # (ip, port): IPVS holds one destination per ip:port


class VipBackends:
    __slots__ = ("order", "backends", "offers")

    def __init__(self) -> None:
        self.order: list[tuple[int, int]] = []  # (integer address, port) of each backend, sorted
        self.backends: list[Backend] = []  # the chosen backend of each slot, parallel to `order`
        self.offers: dict[Slot, dict[str, Contribution]] = {}  # slot -> task key -> its offer

    def __bool__(self) -> bool:
        return bool(self.offers)

    def __len__(self) -> int:
        return len(self.backends)

    def add(self, contribution: Contribution) -> None:
        slot = (contribution.ip, contribution.port)
        offers = self.offers.get(slot)
        if offers is None:
            offers = self.offers[slot] = {}
        offers[contribution.task_key] = contribution
        self._choose(slot, offers)

    def remove(self, contribution: Contribution) -> None:
        slot = (contribution.ip, contribution.port)
        offers = self.offers.get(slot)
        if offers is None or offers.pop(contribution.task_key, None) is None:
            return
        if not offers:
            del self.offers[slot]
        self._choose(slot, offers)

    def _choose(self, slot: Slot, offers: dict[str, Contribution]) -> None:
        """Put the slot's winning offer in place (or take the slot out when none is left)."""
        position = (address_order(slot[0])[1], slot[1])
        index = bisect_left(self.order, position)
        present = index < len(self.order) and self.order[index] == position
        if not offers:
            if present:
                del self.order[index]
                del self.backends[index]
            return
        winner = min(offers.values(), key=_preference) if len(offers) > 1 else next(iter(offers.values()))
        backend = winner.backend()
        if present:
            self.backends[index] = backend
        else:
            self.order.insert(index, position)
            self.backends.insert(index, backend)


def _preference(contribution: Contribution) -> tuple[int, str, str]:
    """Which of several offers of one ip:port IPVS gets: highest weight, then smallest task id
    (then framework, for two frameworks' tasks of one id)."""
    return -contribution.weight, contribution.task_id, contribution.task_key
