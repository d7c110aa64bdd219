"""The DNS processor stage: tasks, agents, frameworks and the cluster in, record sets out.
DnsTable does the deriving; `processors.stage.Stage` does the rebuild, publishing and
rejections. A name or address that cannot be published is reported once in ``rejections``;
the entity's other names are kept."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from processors.dns.config import PUBLISHED, DnsConfig
from processors.dns.table import DnsTable
from processors.stage import Stage
from schemas.mesos import Agent, Cluster, Framework, Task

SOURCES = {"agents": Agent, "frameworks": Framework, "cluster": Cluster, "tasks": Task}


class DnsStage(Stage):
    name = "dns"
    output = "dns"
    sources = SOURCES

    def __init__(self, catalog, sink, config: DnsConfig | None = None):
        super().__init__(catalog, sink)
        self.config = config or PUBLISHED

    def new_table(self, published: dict[str, bytes]) -> DnsTable:
        return DnsTable(self.config)

    def put_all(self, updates: list[tuple[str, str, msgspec.Struct]]) -> None:
        # One batch: shared record sets (every instance of an app) are built once, not per task.
        self.table.put_many((alias.removesuffix("s"), key, entity) for alias, key, entity in updates)
        for what, why, raw in self._new_rejections():
            self.reject(what, why, raw)

    def rejected(self, alias: str, key: str) -> Iterable[tuple[str, str, object]]:
        return self._new_rejections()  # the table says which entity each one is about

    def _new_rejections(self) -> list[tuple[str, str, object]]:
        return [(f"DNS name of {r.subject}", r.why, r.value) for r in self.table.take_rejections()]
