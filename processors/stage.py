"""What every processor stage does around its pure table: decode, rebuild, publish, reject.

A stage turns source records (tasks, agents, ...) into one derived, compacted topic. The pure
table (VipTable, DnsTable) does the deriving; the stage
- rebuilds the table on start by reading every source to its end, and publishes only the
  difference to what the output topic already holds (so a restart publishes nothing new);
- then feeds each consumed record in and publishes the changed keys, with the source
  record's trace and observed time, so a node can measure end-to-end convergence;
- sends what it cannot use to ``rejections``, and goes on.

Records the rebuild already saw arrive again from the consumer and change nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Protocol

import msgspec

from runtime.tables import RecordSink, TableMirror
from schemas import codec
from schemas.catalog import Catalog
from schemas.headers import Observation, RecordMeta
from schemas.rejections import Rejection

log = logging.getLogger(__name__)

Changes = dict[str, msgspec.Struct | None]  # output key -> new value, None: deleted


class DerivedTable(Protocol):
    """A pure table: ``records`` is the whole output; one ``put_<source>(key, entity or None)``
    method per source (``put_task`` for ``tasks``) returns the output keys it changed."""

    records: dict[str, msgspec.Struct]


class Stage:
    """Subclasses set `name` (the rejections source), `output` (the output topic alias) and
    `sources` (alias -> entity type, in rebuild order), and build their table."""

    name: str
    output: str
    sources: dict[str, type[msgspec.Struct]]

    def __init__(self, catalog: Catalog, sink: RecordSink):
        self.catalog = catalog
        self.sink = sink
        self.table: DerivedTable | None = None
        self.mirror: TableMirror | None = None
        self._alias_of = {catalog.topic(alias).name: alias for alias in self.sources}

    def new_table(self, published: dict[str, bytes]) -> DerivedTable:
        raise NotImplementedError

    def rejected(self, alias: str, key: str) -> Iterable[tuple[str, str, object]]:
        """(what, why, raw value) for each new problem the last put of `key` found."""
        return ()

    @property
    def topic_names(self) -> list[str]:
        return list(self._alias_of)

    def rebuild(self, sources: dict[str, dict[str, bytes]], published: dict[str, bytes]) -> int:
        """Start from whole tables; returns how many records had to be (re)published."""
        self.table = self.new_table(published)
        self.mirror = TableMirror(self.catalog.topic(self.output), self.sink, published)
        obs = Observation.now()
        updates = []
        for alias in self.sources:
            for key, value in sources.get(alias, {}).items():
                decoded, entity = self._decode(alias, key, value)
                if decoded:
                    updates.append((alias, key, entity))
        self.put_all(updates)
        written = 0
        for key, value in self.table.records.items():
            written += self.mirror.put(key, value, obs) is not None
        for key in set(self.mirror.keys()) - set(self.table.records):
            written += self.mirror.delete(key, obs) is not None
        return written

    def put_all(self, updates: list[tuple[str, str, msgspec.Struct]]) -> None:
        """The rebuild's entities into the table; a table with a batch path overrides this."""
        for alias, key, entity in updates:
            self._put(alias, key, entity)

    def on_record(self, topic: str, key: bytes | None, value: bytes | None, headers) -> None:
        meta = RecordMeta.from_headers(list(headers or ()))
        obs = Observation(meta.trace, meta.observed_ns) if meta else Observation.now()
        alias, text_key = self._alias_of[topic], key.decode() if key else ""
        decoded, entity = self._decode(alias, text_key, value)
        if not decoded:
            return
        for out_key, out_value in self._put(alias, text_key, entity).items():
            if out_value is None:
                self.mirror.delete(out_key, obs)
            else:
                self.mirror.put(out_key, out_value, obs)

    def _decode(self, alias: str, key: str, value: bytes | None) -> tuple[bool, msgspec.Struct | None]:
        """(True, entity or None for a tombstone), or (False, None) when rejected."""
        try:
            return True, codec.decode(value, self.sources[alias]) if value is not None else None
        except msgspec.ValidationError as error:
            self.reject(f"{alias} record {key}", f"does not match its schema: {error}", value)
            return False, None

    def _put(self, alias: str, key: str, entity: msgspec.Struct | None) -> Changes:
        changes: Changes = getattr(self.table, f"put_{alias.removesuffix('s')}")(key, entity)
        for what, why, raw in self.rejected(alias, key):
            self.reject(what, why, raw)
        return changes

    def reject(self, what: str, why: str, raw: object) -> None:
        log.warning("%s: rejected %s: %s", self.name, what, why)
        topic = self.catalog.topic("rejections")
        value = Rejection(source=self.name, what=what, why=why, excerpt=str(raw)[:200], observed_at=time.time())
        self.sink.publish(topic.name, self.name, codec.encode(value), Observation.now().headers(topic.schema_id))
