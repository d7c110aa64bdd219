"""Following a compacted topic as a table: catch up to the end first, then apply changes.

Appliers must never prune before the first catch-up (ARCHITECTURE.md), so ``catch_up``
returns only when every partition has been read to the end offset it had at the start,
reporting progress on the way; ``changes`` then yields the records that follow.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from runtime.kafka.reader import ConsumedRecord, partitions_of, record_of, watermarks


class TableFollower:
    def __init__(self, bootstrap: str, topic: str):
        self.topic = topic
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"wayfinder-follower-{uuid.uuid4().hex}",  # never joined: partitions are assigned
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 10,
                "socket.nagle.disable": True,
            }
        )
        self.table: dict[str, bytes] = {}

    def catch_up(self, timeout: float = 120.0, progress: Callable[[int, int], None] | None = None) -> dict[str, bytes]:
        """Read every partition to its current end; returns the table (tombstones dropped)."""
        deadline = time.monotonic() + timeout
        partitions = partitions_of(self._consumer, self.topic, timeout)
        ends = {}
        for partition in partitions:
            low, high = watermarks(self._consumer, TopicPartition(self.topic, partition), deadline)
            if high > low:
                ends[partition] = high
        total = sum(ends.values())
        self._consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in partitions])
        read = 0
        while ends:
            if time.monotonic() > deadline:
                raise TimeoutError(f"catching up on {self.topic} took longer than {timeout}s")
            for record in self._poll(10_000, 0.2):
                read += 1
                if record.partition in ends and record.offset + 1 >= ends[record.partition]:
                    del ends[record.partition]
            if progress:
                progress(read, total)
        return self.table

    def changes(self, timeout: float) -> list[ConsumedRecord]:
        """The records that arrived since the last call (the table is updated with them)."""
        return self._poll(10_000, timeout)

    def _poll(self, limit: int, timeout: float) -> list[ConsumedRecord]:
        first = self._consumer.poll(timeout)
        if first is None:
            return []
        messages = [first] + self._consumer.consume(limit - 1, 0)  # what is already buffered, no waiting
        records = []
        for message in messages:
            if message.error():
                if message.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise RuntimeError(f"reading {self.topic}: {message.error()}")
            record = record_of(message)
            if record.value is None:
                self.table.pop(record.key, None)
            else:
                self.table[record.key] = record.value
            records.append(record)
        return records

    def close(self) -> None:
        self._consumer.close()
