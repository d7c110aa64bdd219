"""The DNS processor stage: tasks, agents, frameworks and the cluster in, record sets out.
DnsTable does the deriving; `processors.stage.Stage` does the batching, publishing and
rejections. A name or address that cannot be published is reported once in ``rejections``;
the entity's other names are kept."""

from __future__ import annotations

from processors.dns.config import PUBLISHED, DnsConfig
from processors.dns.table import DnsTable
from processors.stage import Source, Stage, Update
from schemas.mesos import Agent, Cluster, Framework, Task

SOURCES = {
    "agents": Source(Agent, DnsTable.put_agent, "agent"),
    "frameworks": Source(Framework, DnsTable.put_framework, "framework"),
    "cluster": Source(Cluster, DnsTable.put_cluster, "cluster"),
    "tasks": Source(Task, DnsTable.put_task, "task"),
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

    def put_updates(self, updates: list[Update]) -> None:
        """One batch: shared record sets (every instance of an app) are built once, not per
        task. A record set carries the newest observation of the batch that changed it."""
        changes = self.table.put_many((self.sources[u.alias].kind, u.key, u.entity) for u in updates)
        self.changed(changes, max((u.obs for u in updates), key=lambda obs: obs.observed_ns))
        for r in self.table.take_rejections():
            self.reject(f"DNS name of {r.subject}", r.why, r.value)
