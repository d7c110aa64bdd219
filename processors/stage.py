"""What every processor stage does around its pure table: decode, apply in batches, publish
differences, reject.

A stage turns source records (tasks, agents, ...) into one derived, compacted topic. The pure
table (VipTable, DnsTable) does the deriving; the stage
- declares its sources explicitly: alias -> ``Source(entity type, table method)``;
- applies a batch of source records to the table (the newest record of each key only), and
  remembers which output keys changed, with the trace and observed time of the newest source
  record that changed each, so a node can measure end-to-end convergence;
- publishes, when asked, only what differs from what the output topic holds: the changed keys
  after a batch, or every key when a processor takes over;
- collects what it cannot use for ``rejections``.

The stage does no I/O: the processor hands it records and a sink (processors/app.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from schemas import codec
from schemas.catalog import Catalog
from schemas.headers import Observation
from schemas.rejections import Rejection

log = logging.getLogger(__name__)

Changes = dict[str, msgspec.Struct | None]  # output key -> new value, None: deleted
# Output keys changed but not published yet, with the observation to publish them with. A
# standby collects them for as long as it follows; beyond this many, the oldest give way
# (a takeover publishes every difference anyway, only with a fresh observation).
PENDING_LIMIT = 100_000


class DerivedTable(Protocol):
    """A pure table: ``records`` is the whole output."""

    records: dict[str, msgspec.Struct]


@dataclass(frozen=True)
class Source:
    """One input of a stage: the entity type its records decode to, and the table method that
    takes one entity (``put(table, key, entity or None) -> Changes``). ``kind`` names the
    entity in the table's batch method (``DnsTable.put_many``), where it has one."""

    entity: type[msgspec.Struct]
    put: Callable[[Any, str, Any], Changes]
    kind: str = ""


@dataclass(frozen=True)
class SourceRecord:
    """The newest record of one source key in a batch."""

    alias: str
    key: str
    value: bytes | None
    obs: Observation


@dataclass(frozen=True)
class Update:
    alias: str
    key: str
    entity: msgspec.Struct | None
    obs: Observation


class RecordSink(Protocol):
    def publish(self, topic: str, key: str, value: bytes | None, headers: list[tuple[str, bytes]]) -> None: ...


class Stage:
    """Subclasses set `name` (the rejections source), `output` (the output topic alias) and
    `sources` (alias -> Source, in the order a batch applies them), and build their table."""

    name: str
    output: str
    sources: dict[str, Source]

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.table: DerivedTable | None = None
        self.pending: dict[str, Observation] = {}
        self.rejections: list[Rejection] = []  # found, not yet handed to the processor
        self._published: dict[str, bytes] = {}  # what the output topic holds, while publishing

    def new_table(self, published: Mapping[str, bytes]) -> DerivedTable:
        raise NotImplementedError

    def rejected(self, alias: str, key: str) -> Iterable[tuple[str, str, object]]:
        """(what, why, raw value) for each new problem the last put of `key` found."""
        return ()

    def start(self, published: Mapping[str, bytes]) -> None:
        """An empty table; `published` is what the output topic holds (the L4 stage keeps the
        named-VIP addresses it finds there)."""
        self.table = self.new_table(published)

    def reseed(self, published: Mapping[str, bytes]) -> None:
        """Before publishing as the new active processor: align the table with anything the
        output topic holds that the derivation must keep (named-VIP addresses)."""

    # -- applying -------------------------------------------------------------------------
    def apply(self, batch: Mapping[str, Iterable[SourceRecord]]) -> None:
        """One batch of source records (alias -> newest record per key), in source order."""
        updates = []
        for alias in self.sources:
            for record in batch.get(alias, ()):
                decoded, entity = self._decode(alias, record.key, record.value)
                if decoded:
                    updates.append(Update(alias, record.key, entity, record.obs))
        if updates:
            self.put_updates(updates)

    def put_updates(self, updates: list[Update]) -> None:
        """One entity at a time; a table with a batch path overrides this."""
        for update in updates:
            changes = self.sources[update.alias].put(self.table, update.key, update.entity)
            self.changed(changes, update.obs)
            for what, why, raw in self.rejected(update.alias, update.key):
                self.reject(what, why, raw)

    def changed(self, keys: Iterable[str], obs: Observation) -> None:
        pending = self.pending
        for key in keys:
            known = pending.pop(key, None)  # re-inserted: the dict stays in order of change
            pending[key] = obs if known is None or obs.observed_ns >= known.observed_ns else known
        while len(pending) > PENDING_LIMIT:
            del pending[next(iter(pending))]

    def _decode(self, alias: str, key: str, value: bytes | None) -> tuple[bool, msgspec.Struct | None]:
        """(True, entity or None for a tombstone), or (False, None) when rejected."""
        try:
            return True, codec.decode(value, self.sources[alias].entity) if value is not None else None
        except msgspec.ValidationError as error:
            self.reject(f"{alias} record {key}", f"does not match its schema: {error}", value)
            return False, None

    def reject(self, what: str, why: str, raw: object) -> None:
        log.warning("%s: rejected %s: %s", self.name, what, why)
        self.rejections.append(Rejection(source=self.name, what=what, why=why, excerpt=str(raw)[:200],
                                         observed_at=time.time()))

    def take_rejections(self) -> list[Rejection]:
        taken, self.rejections = self.rejections, []
        return taken

    # -- publishing -----------------------------------------------------------------------
    def publish_difference(self, sink: RecordSink, published: Mapping[str, bytes]) -> int:
        """Everything the output topic (`published`) lacks or holds wrongly; returns the count.
        From here on the stage assumes the topic holds its table (see `publish_pending`)."""
        self._published = dict(published)
        now = Observation.now()
        keys = list(self.table.records) + [key for key in published if key not in self.table.records]
        written = sum(self._write(sink, key, self.pending.get(key, now)) for key in keys)
        self.pending.clear()
        return written

    def publish_pending(self, sink: RecordSink) -> int:
        """The output keys changed since the last publication, where they really changed."""
        written = sum(self._write(sink, key, obs) for key, obs in self.pending.items())
        self.pending.clear()
        return written

    def stop_publishing(self) -> None:
        """A processor that steps down: what the topic holds is read again at the next takeover."""
        self._published = {}

    def _write(self, sink: RecordSink, key: str, obs: Observation) -> bool:
        value = self.table.records.get(key)
        encoded = codec.encode(value) if value is not None else None
        if encoded == self._published.get(key):
            return False
        topic = self.catalog.topic(self.output)
        sink.publish(topic.name, key, encoded, obs.headers(topic.schema_id))
        if encoded is None:
            del self._published[key]
        else:
            self._published[key] = encoded
        return True

    def encoded_records(self) -> dict[str, bytes]:
        """The whole output table as the topic would hold it."""
        return {key: codec.encode(value) for key, value in self.table.records.items()}
