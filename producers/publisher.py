"""What a producer writes: its tables (differences only), the history, and rejections.

The observers (pure state machines for Mesos and Marathon) call this with whole entities;
it decides what really changed, writes those records, and a history record for each.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

import msgspec

from producers.history import change_events
from producers.problems import InputRejected
from runtime.tables import RecordSink, TableMirror
from schemas import codec
from schemas.catalog import DEFAULT_CATALOG, Catalog
from schemas.headers import Observation
from schemas.rejections import Rejection

log = logging.getLogger(__name__)


class Publisher:
    def __init__(
        self,
        sink: RecordSink,
        source: str,
        actual: Mapping[str, dict[str, bytes]],
        catalog: Catalog = DEFAULT_CATALOG,
    ):
        """``actual`` maps each table alias this producer owns to what its topic holds now."""
        self.source = source
        self._sink = sink
        self.tables = {alias: TableMirror(catalog.topic(alias), sink, values) for alias, values in actual.items()}
        self._events = catalog.topic("events")
        self._rejections = catalog.topic("rejections")
        self.published = 0
        self.rejected = 0

    def put(self, alias: str, key: str, entity: msgspec.Struct, obs: Observation) -> bool:
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
        log.warning("rejected %s input (%s): %s", self.source, problem.what, problem.why)
        value = Rejection(
            source=self.source, what=problem.what, why=problem.why, excerpt=problem.excerpt, observed_at=time.time()
        )
        headers = Observation.now().headers(self._rejections.schema_id)
        self._sink.publish(self._rejections.name, self.source, codec.encode(value), headers)
        self.rejected += 1

    def _history(self, alias: str, key: str, old, new, obs: Observation) -> None:
        self.published += 1
        headers = obs.headers(self._events.schema_id)
        for event in change_events(alias, key, old, new, self.source, obs.observed_ns / 1e9):
            self._sink.publish(self._events.name, key, codec.encode(event), headers)
