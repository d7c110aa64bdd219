"""The L4 processor stage: source records in, VIP records out. Thin: VipTable does the work.

On start it rebuilds the whole VipTable by reading tasks, agents and frameworks to their
end, seeded with the addresses the ``vips`` topic already holds (so named VIPs keep their
IPs across restarts), and publishes the difference to what ``vips`` holds. After that each
record is one incremental update. Records the rebuild already saw come again from the
consumer and change nothing, so nothing is lost between the rebuild and the stream.
"""

from __future__ import annotations

import logging
import time

import msgspec

from processors.l4lb.labels import Rejection as VipRejection
from processors.l4lb.table import Changes, VipTable
from runtime.tables import RecordSink, TableMirror
from schemas import codec
from schemas.catalog import Catalog
from schemas.headers import Observation, RecordMeta
from schemas.l4lb import Vip
from schemas.mesos import Agent, Framework, Task
from schemas.rejections import Rejection

log = logging.getLogger(__name__)

SOURCES = {"tasks": Task, "agents": Agent, "frameworks": Framework}


def allocations_of(published: dict[str, bytes]) -> dict[int, dict[tuple[str, str], str]]:
    """The named-VIP addresses a previous run published, to keep them."""
    allocations: dict[int, dict[tuple[str, str], str]] = {4: {}, 6: {}}
    for value in published.values():
        vip = codec.decode(value, Vip)
        if vip.name is not None:
            allocations[6 if ":" in vip.ip else 4][(vip.name, vip.framework)] = vip.ip
    return allocations


class L4Stage:
    def __init__(self, catalog: Catalog, sink: RecordSink):
        self.catalog = catalog
        self.sink = sink
        self.table: VipTable | None = None
        self.output: TableMirror | None = None
        self._alias_of = {catalog.topic(alias).name: alias for alias in SOURCES}

    def rebuild(self, sources: dict[str, dict[str, bytes]], published: dict[str, bytes]) -> int:
        """Start from whole tables; returns how many records had to be (re)published."""
        self.table = VipTable(allocations_of(published))
        self.output = TableMirror(self.catalog.topic("vips"), self.sink, published)
        obs = Observation.now()
        for alias in ("agents", "frameworks", "tasks"):
            for key, value in sources[alias].items():
                self._apply(alias, key, value, obs, publish=False)
        written = 0
        for key, vip in self.table.records.items():
            written += self.output.put(key, vip, obs) is not None
        for key in set(self.output.keys()) - set(self.table.records):
            written += self.output.delete(key, obs) is not None
        return written

    def on_record(self, topic: str, key: bytes | None, value: bytes | None, headers) -> None:
        meta = RecordMeta.from_headers(list(headers or ()))
        obs = Observation(meta.trace, meta.observed_ns) if meta else Observation.now()
        self._apply(self._alias_of[topic], key.decode() if key else "", value, obs, publish=True)

    def _apply(self, alias: str, key: str, value: bytes | None, obs: Observation, publish: bool) -> None:
        try:
            entity = codec.decode(value, SOURCES[alias]) if value is not None else None
        except msgspec.ValidationError as error:
            self._reject(f"{alias} record {key}", f"does not match its schema: {error}", value)
            return
        before = self.table.rejections.get(key) if alias == "tasks" else None
        changes: Changes = getattr(self.table, f"put_{alias[:-1]}")(key, entity)
        if alias == "tasks" and self.table.rejections.get(key) not in (None, before):
            for rejection in self.table.rejections[key]:
                self._reject_label(rejection)
        if publish:
            for vip_key, vip in changes.items():
                if vip is None:
                    self.output.delete(vip_key, obs)
                else:
                    self.output.put(vip_key, vip, obs)

    def _reject_label(self, rejection: VipRejection) -> None:
        what = f"VIP label {rejection.label} of task {rejection.task_id}" if rejection.task_id else "VIP"
        self._reject(what, rejection.why, rejection.value)

    def _reject(self, what: str, why: str, raw: object) -> None:
        log.warning("rejected %s: %s", what, why)
        topic = self.catalog.topic("rejections")
        value = Rejection(source="l4lb", what=what, why=why, excerpt=str(raw)[:200], observed_at=time.time())
        self.sink.publish(topic.name, "l4lb", codec.encode(value), Observation.now().headers(topic.schema_id))
