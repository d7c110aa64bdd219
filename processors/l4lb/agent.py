"""The L4 processor stage: tasks, agents and frameworks in, VIP records out. VipTable does the
work; `processors.stage.Stage` does the batching, publishing and rejections.

Named VIPs keep their addresses: the table starts from the addresses the ``vips`` topic
holds, and a processor taking over re-seeds its table from what the topic holds at that
moment, so the addresses the previous active handed out stay (see `reseed`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from processors.l4lb.table import VipTable
from processors.stage import Source, Stage, Update
from schemas import codec
from schemas.l4lb import Vip
from schemas.mesos import Agent, Framework, Task

SOURCES = {
    "agents": Source(Agent, "agent"),
    "frameworks": Source(Framework, "framework"),
    "tasks": Source(Task, "task"),
}


def allocations_of(published: Mapping[str, bytes]) -> dict[int, dict[tuple[str, str], str]]:
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

    def __init__(self, catalog):
        super().__init__(catalog)
        self._reported: dict[str, object] = {}

    def new_table(self, published: Mapping[str, bytes]) -> VipTable:
        return VipTable(allocations_of(published))

    def reseed(self, published: Mapping[str, bytes]) -> None:
        """A standby places new names on its own; where an address it chose differs from the
        one the previous active published, rebuild the table from its entities with the
        published addresses as the previous allocation (they win)."""
        wanted = allocations_of(published)
        table: VipTable = self.table
        if all(table.allocations.get(family, {}).get(name, ip) == ip
               for family, names in wanted.items() for name, ip in names.items()):
            return
        fresh = VipTable(wanted, table.ranges)
        fresh.put_many([*(("agent", key, agent) for key, agent in table.agents.items()),
                        *(("framework", key, framework) for key, framework in table.frameworks.items()),
                        *(("task", key, task) for key, task in table.tasks.items())])
        self.table = fresh

    def rejected(self, updates: list[Update], changes) -> Iterable[tuple[str, str, object]]:
        """Each updated task's label problems, once per new set of problems (a repeat of the same
        task record does not report them again)."""
        found = []
        for update in updates:
            if update.alias != "tasks":
                continue
            now = self.table.rejections.get(update.key)
            if now is None:
                self._reported.pop(update.key, None)  # fixed: the same problems later are news again
                continue
            if self._reported.get(update.key) == now:
                continue
            self._reported[update.key] = now
            found.extend((f"VIP label {r.label} of task {r.task_id}" if r.task_id else "VIP", r.why, r.value)
                         for r in now)
        return found
