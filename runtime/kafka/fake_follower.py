"""The Follower seam in memory: a one-partition table that tests publish records into, for
unit tests of role loops without Kafka (runtime.reconcile.Follower)."""

from __future__ import annotations

import time
from collections.abc import Callable

from runtime.kafka.follower import Offsets
from runtime.kafka.reader import ConsumedRecord


class FakeFollower:
    def __init__(self, topic: str = "fake") -> None:
        self.topic = topic
        self.log: list[ConsumedRecord] = []
        self.position = 0  # the next offset to read
        self.closed = False

    def publish(self, key: str, value: bytes | None, headers: list[tuple[str, bytes]] | None = None) -> None:
        self.log.append(ConsumedRecord(self.topic, 0, len(self.log), int(time.time() * 1000), key, value,
                                       list(headers or [])))

    def publish_batch(self, records: list[tuple[str, bytes | None, list[tuple[str, bytes]] | None]]) -> None:
        """Several records at once: a reader sees all of them or none (one list extend)."""
        start = len(self.log)
        self.log.extend(ConsumedRecord(self.topic, 0, start + i, int(time.time() * 1000), key, value, list(headers or []))
                        for i, (key, value, headers) in enumerate(records))

    def catch_up(self, timeout: float = 0.0, progress: Callable[[int, int], None] | None = None,
                 each: Callable[[ConsumedRecord], None] | None = None) -> None:
        end = len(self.log)
        for record in self.log[self.position:end]:
            if each:
                each(record)
        self.position = end
        if progress:
            progress(end, end)

    def changes(self, timeout: float) -> list[ConsumedRecord]:
        end = len(self.log)
        if end == self.position:
            time.sleep(min(timeout, 0.005))
            return []
        records, self.position = self.log[self.position:end], end
        return records

    def end_offsets(self, timeout: float = 0.0) -> Offsets:
        return {0: len(self.log)}

    def reached(self, ends: Offsets) -> bool:
        return self.position >= ends.get(0, 0)

    def close(self) -> None:
        self.closed = True
