"""One record set that several entities feed, kept sorted as they come and go (pure).

``web.marathon.mesos./A`` holds an address of every instance of the app. Rebuilding it from
every instance's share on each change costs as much as the app is large; this keeps the union
counted and sorted instead, so adding or taking back one share costs O(log n) Python steps
per value, and the published lists are C-level copies.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import Counter
from collections.abc import Iterable
from itertools import chain

Share = tuple[tuple[str, ...], str | None, str | None]  # (rdata, task id, framework name) of one entity


class SharedSet:
    __slots__ = ("rdata", "rdata_count", "tasks", "framework_count")

    def __init__(self) -> None:
        self.rdata: list[str] = []  # sorted, each value once
        self.rdata_count: dict[str, int] = {}  # how many shares hold each value
        self.tasks: list[str] = []  # sorted; a task feeds one record set through one share
        self.framework_count: dict[str, int] = {}

    @classmethod
    def of(cls, shares: Iterable[Share]) -> SharedSet:
        """Built at once from every share (a rebuild: one C-level sort instead of n insertions)."""
        shares = list(shares)
        built = cls()
        built.rdata_count = dict(Counter(chain.from_iterable(share[0] for share in shares)))
        built.rdata = sorted(built.rdata_count)
        built.tasks = sorted(share[1] for share in shares if share[1] is not None)
        built.framework_count = dict(Counter(share[2] for share in shares if share[2] is not None))
        return built

    def add(self, rdata: Iterable[str], task: str | None, framework: str | None) -> None:
        counts = self.rdata_count
        for value in rdata:
            held = counts.get(value, 0)
            counts[value] = held + 1
            if not held:
                insort(self.rdata, value)
        if task is not None:
            insort(self.tasks, task)
        if framework is not None:
            self.framework_count[framework] = self.framework_count.get(framework, 0) + 1

    def remove(self, rdata: Iterable[str], task: str | None, framework: str | None) -> None:
        counts = self.rdata_count
        for value in rdata:
            held = counts[value] - 1
            if held:
                counts[value] = held
            else:
                del counts[value]
                _discard(self.rdata, value)
        if task is not None:
            _discard(self.tasks, task)
        if framework is not None:
            held = self.framework_count[framework] - 1
            if held:
                self.framework_count[framework] = held
            else:
                del self.framework_count[framework]

    def framework(self) -> str | None:
        return min(self.framework_count, default=None)


def _discard(ordered: list[str], value: str) -> None:
    index = bisect_left(ordered, value)
    if index < len(ordered) and ordered[index] == value:
        del ordered[index]
