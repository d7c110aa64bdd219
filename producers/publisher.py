"""What a producer writes: its tables (differences only), the history, and rejections.

The observers (pure state machines for Mesos and Marathon) call this with whole entities;
it decides what really changed, writes those records, and a history record for each.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping

import msgspec

from producers.history import change_events
from producers.history_gap import Gap, gap_event
from producers.problems import InputRejected
from producers.record_check import MAX_VALUE_BYTES, record_problem
from runtime.metrics import PRODUCER_CHANGES, REJECTIONS
from runtime.tables import RecordSink, TableMirror
from schemas import codec
from schemas.catalog import DEFAULT_CATALOG, Catalog
from schemas.headers import Observation
from schemas.history import ChangeEvent
from schemas.rejections import Rejection

log = logging.getLogger(__name__)

MAX_WHY_CHARS = 2000


class Publisher:
    def __init__(
        self,
        sink: RecordSink,
        source: str,
        actual: Mapping[str, dict[str, bytes]],
        catalog: Catalog = DEFAULT_CATALOG,
        max_value_bytes: int = MAX_VALUE_BYTES,
    ):
        """``actual`` maps each table alias this producer owns to what its topic holds now."""
        self.source = source
        self.max_value_bytes = max_value_bytes
        self._sink = sink
        self.tables = {alias: TableMirror(catalog.topic(alias), sink, values) for alias, values in actual.items()}
        self._events = catalog.topic("events")
        self._rejections = catalog.topic("rejections")
        self.published = 0
        self.rejected = 0
        self.gaps = 0

    def put(self, alias: str, key: str, entity: msgspec.Struct, obs: Observation) -> bool:
        """Publish ``entity`` if it changed. A wrongly typed or oversized one is rejected instead,
        and the table keeps its last good value of ``key``."""
        problem = record_problem(alias, key, entity, self.max_value_bytes)
        if problem is not None:
            self.reject(problem)
            return False
        change = self.tables[alias].put(key, entity, obs)
        if change:
            self._history(alias, key, change.old, entity, obs)
        return change is not None

    def remove(self, alias: str, key: str, obs: Observation, final: msgspec.Struct | None = None) -> bool:
        """Tombstone ``key``. ``final`` is the last state seen (a terminal task), for the history."""
        change = self.tables[alias].delete(key, obs)
        if change:
            self._history(alias, key, change.old, final, obs)
        return change is not None

    def sync(
        self,
        alias: str,
        desired: Mapping[str, msgspec.Struct],
        obs: Observation,
        keep: Callable[[str, msgspec.Struct | None], bool] = lambda key, entity: False,
    ) -> int:
        """Make table ``alias`` equal ``desired``; keys that ``keep`` protects are not pruned.

        Returns how many records were written.
        """
        table = self.tables[alias]
        written = sum(self.put(alias, key, entity, obs) for key, entity in desired.items())
        for key in table.keys():
            if key not in desired and not keep(key, table.get(key)):
                written += self.remove(alias, key, obs)
        return written

    def reject(self, problem: InputRejected) -> None:
        """Record refused input. Logged and published; never raised further."""
        log.warning("rejected %s input (%s): %s", self.source, problem.what, problem.why[:MAX_WHY_CHARS])
        # ``why`` may quote an id of any length; the record has to stay far below the size limit.
        value = Rejection(
            source=self.source, what=problem.what, why=problem.why[:MAX_WHY_CHARS], excerpt=problem.excerpt,
            observed_at=time.time(),
        )
        headers = Observation.now().headers(self._rejections.schema_id)
        self._sink.publish(self._rejections.name, self.source, codec.encode(value), headers)
        self.rejected += 1
        REJECTIONS.labels(self.source).inc()

    def history_gap(self, gap: Gap, until: float, rebuilt: list[ChangeEvent]) -> None:
        """The ``history_gap`` event, then the events rebuilt from the master's memory."""
        self.gaps += 1
        log.warning("%s history may be incomplete from %.3f to %.3f (%s); %d events rebuilt",
                    self.source, gap.since, until, gap.cause, len(rebuilt))
        for event in [gap_event(self.source, gap, until, len(rebuilt)), *rebuilt]:
            obs = Observation(os.urandom(8).hex(), int(event.observed_at * 1e9))
            self._sink.publish(self._events.name, event.id, codec.encode(event), obs.headers(self._events.schema_id))

    def _history(self, alias: str, key: str, old, new, obs: Observation) -> None:
        self.published += 1
        PRODUCER_CHANGES.labels(self.source).inc()
        headers = obs.headers(self._events.schema_id)
        for event in change_events(alias, key, old, new, self.source, obs.observed_ns / 1e9):
            self._sink.publish(self._events.name, key, codec.encode(event), headers)
