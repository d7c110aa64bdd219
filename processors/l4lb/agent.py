"""The L4 processor stage: tasks, agents and frameworks in, VIP records out. VipTable does the
work; `processors.stage.Stage` does the rebuild, publishing and rejections.

The rebuild seeds the table with the addresses the ``vips`` topic already holds, so named
VIPs keep their IPs across restarts.
"""

from __future__ import annotations

from collections.abc import Iterable

from processors.l4lb.table import VipTable
from processors.stage import Stage
from schemas import codec
from schemas.l4lb import Vip
from schemas.mesos import Agent, Framework, Task

SOURCES = {"agents": Agent, "frameworks": Framework, "tasks": Task}


def allocations_of(published: dict[str, bytes]) -> dict[int, dict[tuple[str, str], str]]:
    """The named-VIP addresses a previous run published, to keep them."""
    allocations: dict[int, dict[tuple[str, str], str]] = {4: {}, 6: {}}
    for value in published.values():
        vip = codec.decode(value, Vip)
        if vip.name is not None:
            allocations[6 if ":" in vip.ip else 4][(vip.name, vip.framework)] = vip.ip
    return allocations


class L4Stage(Stage):
    name = "l4lb"
    output = "vips"
    sources = SOURCES

    def __init__(self, catalog, sink):
        super().__init__(catalog, sink)
        self._reported: dict[str, object] = {}

    def new_table(self, published: dict[str, bytes]) -> VipTable:
        return VipTable(allocations_of(published))

    def rejected(self, alias: str, key: str) -> Iterable[tuple[str, str, object]]:
        """A task's label problems, once per new set of problems (a repeat of the same task
        record does not report them again)."""
        if alias != "tasks":
            return ()
        now = self.table.rejections.get(key)
        if now is None:
            self._reported.pop(key, None)  # fixed: the same problems later are news again
            return ()
        if self._reported.get(key) == now:
            return ()
        self._reported[key] = now
        return [(f"VIP label {r.label} of task {r.task_id}" if r.task_id else "VIP", r.why, r.value) for r in now]
