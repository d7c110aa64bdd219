"""The L4 processor stage: tasks, agents and frameworks in, VIP records out. VipTable does the
work; `processors.stage.Stage` does the batching, publishing and rejections.

Named VIPs keep their addresses: the table starts from the addresses the ``vips`` topic
holds, and a processor taking over re-seeds its table from what the topic holds at that
moment, so the addresses the previous active handed out stay (see `reseed`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from processors.l4lb.table import VipTable
from processors.stage import Source, Stage
from schemas import codec
from schemas.l4lb import Vip
from schemas.mesos import Agent, Framework, Task

SOURCES = {
    "agents": Source(Agent, VipTable.put_agent),
    "frameworks": Source(Framework, VipTable.put_framework),
    "tasks": Source(Task, VipTable.put_task),
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
        for agent_id, agent in table.agents.items():
            fresh.put_agent(agent_id, agent)
        for framework_id, framework in table.frameworks.items():
            fresh.put_framework(framework_id, framework)
        for task_id, task in table.tasks.items():
            fresh.put_task(task_id, task)
        self.table = fresh

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
