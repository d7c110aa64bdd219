"""What every processor stage does around its pure table: decode, apply in batches, publish
differences, reject.

A stage turns source records (tasks, agents, ...) into one derived, compacted topic. The pure
table (VipTable, DnsTable) does the deriving; the stage
- declares its sources explicitly: alias -> ``Source(entity type, entity kind)``;
- applies a batch of source records to the table in one step (the newest record of each key
  only; the table's result does not depend on their order), and remembers which output keys
  changed, each with the trace and observed time of the newest source record that changed
  it, so a node can measure end-to-end convergence;
- publishes, when asked, the output keys changed since the last publication (the table
  reports only real changes), or, when a processor takes over, whatever the output topic
  holds differently from the table;
- collects what it cannot use for ``rejections``.

The stage does no I/O: the processor hands it records and a sink (processors/app.py).
"""

from __future__ import annotations

import logging
import time
from itertools import islice
from collections.abc import Iterable, Mapping
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
HEADERS_CACHE = 1024  # observations whose encoded headers are kept, for the keys that share them


class DerivedTable(Protocol):
    """A pure table: ``records`` is the whole output. ``apply_batch`` takes ``(kind, key,
    entity or None)`` updates and returns the changed output keys with their new values (None:
    gone), and for each changed key the index of the newest update behind it."""

    records: dict[str, msgspec.Struct]

    def apply_batch(self, updates: list[tuple[str, str, Any]]) -> tuple[Changes, dict[str, int]]: ...


@dataclass(frozen=True)
class Source:
    """One input of a stage: the entity type its records decode to, and the name of that kind
    of entity in the table's ``apply_batch``."""

    entity: type[msgspec.Struct]
    kind: str


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


def decode_batch(sources: Mapping[str, Source], batch: Mapping[str, Iterable[SourceRecord]],
                 rejected_by: str) -> tuple[dict[str, list[Update]], list[Rejection]]:
    """Each record of the given sources decoded once (None for a tombstone); a record that
    does not match its schema is left out and reported as rejected by `rejected_by`."""
    updates: dict[str, list[Update]] = {}
    rejections: list[Rejection] = []
    for alias, source in sources.items():
        decoded = updates[alias] = []
        for record in batch.get(alias, ()):
            try:
                entity = codec.decode(record.value, source.entity) if record.value is not None else None
            except msgspec.ValidationError as error:
                rejections.append(rejection(rejected_by, f"{alias} record {record.key}",
                                            f"does not match its schema: {error}", record.value))
                continue
            decoded.append(Update(alias, record.key, entity, record.obs))
    return updates, rejections


def rejection(source: str, what: str, why: str, raw: object) -> Rejection:
    log.warning("%s: rejected %s: %s", source, what, why)
    return Rejection(source=source, what=what, why=why, excerpt=str(raw)[:200], observed_at=time.time())


class RecordSink(Protocol):
    def publish(self, topic: str, key: str, value: bytes | None, headers: list[tuple[str, bytes]]) -> None: ...


class Stage:
    """Subclasses set `name` (the rejections source), `output` (the output topic alias) and
    `sources` (alias -> Source), and build their table."""

    name: str
    output: str
    sources: dict[str, Source]

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        output = catalog.topic(self.output)
        self._topic_name, self._schema_id = output.name, output.schema_id
        self._headers: dict[Observation, list[tuple[str, bytes]]] = {}
        self.table: DerivedTable | None = None
        self.pending: dict[str, Observation] = {}
        self.rejections: list[Rejection] = []  # found, not yet handed to the processor

    def new_table(self, published: Mapping[str, bytes]) -> DerivedTable:
        raise NotImplementedError

    def rejected(self, updates: list[Update], changes: Changes) -> Iterable[tuple[str, str, object]]:
        """(what, why, raw value) for each new problem the batch's updates found."""
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
        """One batch of source records (alias -> newest record per key), decoded here."""
        updates, rejections = decode_batch(self.sources, batch, self.name)
        self.rejections.extend(rejections)
        self.apply_updates(updates)

    def apply_updates(self, updates: Mapping[str, list[Update]]) -> None:
        """One batch of decoded source records (alias -> updates): the processor decodes each
        record once for all its stages."""
        mine = [update for alias in self.sources for update in updates.get(alias, ())]
        if mine:
            self.put_updates(mine)

    def put_updates(self, updates: list[Update]) -> None:
        """The whole batch in one step: each touched output key is derived once, and remembered
        with the observation of the newest update that changed it."""
        updates.sort(key=lambda update: update.obs.observed_ns)  # a later index: a newer observation
        changes, causes = self.derive(updates)
        self.changed({key: updates[index].obs for key, index in causes.items()})
        for what, why, raw in self.rejected(updates, changes):
            self.reject(what, why, raw)

    def derive(self, updates: list[Update]) -> tuple[Changes, dict[str, int]]:
        """The table's changes for a batch of updates, oldest first (a stage whose table needs
        more of each update than its entity, such as when it was observed, overrides this)."""
        return self.table.apply_batch([(self.sources[u.alias].kind, u.key, u.entity) for u in updates])

    def tick(self, now: float) -> None:
        """Time has passed (``now``: seconds since the epoch). A table whose output changes with
        time alone (overlay leases freed after a grace period) derives those changes here and
        hands them to ``changed``, published like any other. The processor calls this about
        every second, active or standing by; most stages have nothing to do."""

    def changed(self, observed: Mapping[str, Observation]) -> None:
        """Remember changed output keys with their observations (the newer one where a key is
        already pending); beyond ``PENDING_LIMIT`` the oldest are forgotten, in one step."""
        pending = self.pending
        for key, obs in observed.items():
            known = pending.pop(key, None)  # re-inserted: the dict stays in order of change
            pending[key] = obs if known is None or obs.observed_ns >= known.observed_ns else known
        if len(pending) > PENDING_LIMIT:
            self.pending = dict(islice(pending.items(), len(pending) - PENDING_LIMIT, None))

    def reject(self, what: str, why: str, raw: object) -> None:
        self.rejections.append(rejection(self.name, what, why, raw))

    def take_rejections(self) -> list[Rejection]:
        taken, self.rejections = self.rejections, []
        return taken

    # -- publishing -----------------------------------------------------------------------
    # Nothing of the output is kept encoded: at a takeover the topic's content is compared
    # once, and from then on the table itself reports only real changes (a key whose value
    # went back to what it was within a batch is not among them). A copy of every published
    # value would double the processor's memory (a million record sets at 100,000 tasks).
    def publish_difference(self, sink: RecordSink, published: Mapping[str, bytes]) -> int:
        """Everything the output topic (`published`) lacks or holds wrongly; returns the count.
        From here on the stage assumes the topic holds its table (see `publish_pending`)."""
        now = Observation.now()
        records = self.table.records
        written = 0
        for key, value in records.items():
            encoded = codec.encode(value)
            if encoded != published.get(key):
                written += self._send(sink, key, encoded, self.pending.get(key, now))
        for key in published:
            if key not in records:
                written += self._send(sink, key, None, self.pending.get(key, now))
        self.pending.clear()
        return written

    def publish_pending(self, sink: RecordSink) -> int:
        """The output keys changed since the last publication, each once, with its newest
        observation."""
        records = self.table.records
        written = 0
        for key, obs in self.pending.items():
            value = records.get(key)
            written += self._send(sink, key, codec.encode(value) if value is not None else None, obs)
        self.pending.clear()
        return written

    def _send(self, sink: RecordSink, key: str, encoded: bytes | None, obs: Observation) -> bool:
        # An output value too big for Kafka (a VIP of some 12,000 backends) is refused here:
        # sent, it would fail the whole transaction again and again, and stop every change.
        if encoded is not None and len(encoded) > codec.MAX_VALUE_BYTES:
            self.reject(f"{self.output} record {key}",
                        f"its value is {len(encoded):,} bytes, over the {codec.MAX_VALUE_BYTES:,} a Kafka record may hold: "
                        f"not published (the topic keeps its previous value)", encoded[:200])
            return False
        # The keys of one batch mostly share a few observations: their headers are built once.
        headers = self._headers.get(obs)
        if headers is None:
            if len(self._headers) >= HEADERS_CACHE:
                self._headers.clear()
            headers = self._headers[obs] = obs.headers(self._schema_id)
        sink.publish(self._topic_name, key, encoded, headers)
        return True

    def encoded_records(self) -> dict[str, bytes]:
        """The whole output table as the topic would hold it."""
        return {key: codec.encode(value) for key, value in self.table.records.items()}
