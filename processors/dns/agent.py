"""The DNS processor stage: tasks, agents, frameworks and the cluster in, record sets out.
DnsTable does the deriving; `processors.stage.Stage` does the batching, publishing and
rejections. A name or address that cannot be published is reported once in ``rejections``;
the entity's other names are kept."""

from __future__ import annotations

from collections.abc import Iterable

from processors.dns.config import PUBLISHED, DnsConfig
from processors.dns.table import DnsTable
from processors.stage import Source, Stage, Update
from schemas.mesos import Agent, Cluster, Framework, Task

SOURCES = {
    "agents": Source(Agent, "agent"),
    "frameworks": Source(Framework, "framework"),
    "cluster": Source(Cluster, "cluster"),
    "tasks": Source(Task, "task"),
}


class DnsStage(Stage):
    name = "dns"
    output = "dns"
    sources = SOURCES

    def __init__(self, catalog, config: DnsConfig | None = None):
        super().__init__(catalog)
        self.config = config or PUBLISHED

    def new_table(self, published) -> DnsTable:
        return DnsTable(self.config)

    def rejected(self, updates: list[Update], changes) -> Iterable[tuple[str, str, object]]:
        return [(f"DNS name of {r.subject}", r.why, r.value) for r in self.table.take_rejections()]
