"""A compacted topic mirrored in memory, publishing only differences.

This is the producers' half of "topics are tables": the mirror starts from what the topic
holds (read at start-up), and every ``put``/``delete`` writes a record only when the
encoded value really changes. A restart with no change in the cluster therefore publishes
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import msgspec

from schemas import codec
from schemas.catalog import Topic
from schemas.headers import Observation


class RecordSink(Protocol):
    """Where records go: Kafka in production, a list in unit tests."""

    def publish(self, topic: str, key: str, value: bytes | None, headers: list[tuple[str, bytes]]) -> None: ...


@dataclass(frozen=True)
class Change:
    key: str
    old: msgspec.Struct | None
    new: msgspec.Struct | None


class TableMirror:
    def __init__(self, topic: Topic, sink: RecordSink, initial: dict[str, bytes] | None = None):
        self.topic = topic
        self._sink = sink
        self._encoded: dict[str, bytes] = dict(initial or {})
        self._entities: dict[str, msgspec.Struct | None] = {}
        for key, value in self._encoded.items():
            try:
                self._entities[key] = codec.decode(value, topic.value_type)
            except msgspec.ValidationError:
                self._entities[key] = None  # an older or foreign value: the next put replaces it

    def __contains__(self, key: str) -> bool:
        return key in self._encoded

    def keys(self) -> list[str]:
        return list(self._encoded)

    def get(self, key: str) -> msgspec.Struct | None:
        return self._entities.get(key)

    def items(self) -> list[tuple[str, msgspec.Struct | None]]:
        return list(self._entities.items())

    def put(self, key: str, entity: msgspec.Struct, obs: Observation) -> Change | None:
        encoded = codec.encode(entity)
        if self._encoded.get(key) == encoded:
            return None
        old = self._entities.get(key)
        self._sink.publish(self.topic.name, key, encoded, obs.headers(self.topic.schema_id))
        self._encoded[key] = encoded
        self._entities[key] = entity
        return Change(key, old, entity)

    def delete(self, key: str, obs: Observation) -> Change | None:
        if key not in self._encoded:
            return None
        old = self._entities.pop(key)
        del self._encoded[key]
        self._sink.publish(self.topic.name, key, None, obs.headers(self.topic.schema_id))
        return Change(key, old, None)


class MemorySink:
    """The in-memory stand-in for Kafka behind RecordSink, for unit tests of pure stages."""

    def __init__(self):
        self.records: list[tuple[str, str, bytes | None, list[tuple[str, bytes]]]] = []

    def publish(self, topic: str, key: str, value: bytes | None, headers: list[tuple[str, bytes]]) -> None:
        self.records.append((topic, key, value, headers))

    def table(self, topic: str) -> dict[str, bytes]:
        """What a compacted topic would hold: the last value per key, tombstones removed."""
        latest: dict[str, bytes | None] = {}
        for name, key, value, _ in self.records:
            if name == topic:
                latest[key] = value
        return {key: value for key, value in latest.items() if value is not None}

    def log(self, topic: str) -> list[tuple[str, bytes | None]]:
        return [(key, value) for name, key, value, _ in self.records if name == topic]
