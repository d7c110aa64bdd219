"""Following a compacted topic as a table: catch up to the end first, then apply changes.

Appliers must never prune before the first catch-up (ARCHITECTURE.md), so ``catch_up``
returns only when every partition has been read to the end offset it had at the start,
reporting progress on the way; ``changes`` then yields the records that follow.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from runtime.kafka.reader import ConsumedRecord, partitions_of, record_of, watermarks


class CatchUpProgress:
    """A `catch_up` progress callback that logs every few seconds, and keeps the last
    (records read, records to read) for metrics."""

    def __init__(self, log: logging.Logger, what: str, every_s: float = 2.0) -> None:
        self.log, self.what, self.every_s = log, what, every_s
        self.read = self.total = 0
        self._logged_at = 0.0

    def __call__(self, read: int, total: int) -> None:
        self.read, self.total = read, total
        now = time.monotonic()
        if total and (now - self._logged_at >= self.every_s or read >= total):
            self._logged_at = now
            self.log.info("%s: catching up %d/%d records (%.0f%%)", self.what, read, total, 100.0 * read / total)


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
                # librdkafka prefetches up to 64 MiB per partition by default; a node follows a
                # handful of partitions and consumes as fast as they come, so 1 MiB each is
                # as fast and keeps a large catch-up from doubling the node's memory.
                "queued.max.messages.kbytes": 1024,
                "fetch.max.bytes": 1024 * 1024,
                # A full queue postpones the next fetch by this much (default 1 s), which a
                # catch-up hits all the time; the first changes after it would wait for it.
                "fetch.queue.backoff.ms": 5,
            }
        )

    def catch_up(self, timeout: float = 120.0, progress: Callable[[int, int], None] | None = None,
                 each: Callable[[ConsumedRecord], None] | None = None) -> dict[str, bytes]:
        """Read every partition to its current end; returns the table (tombstones dropped).
        With `each`, every record goes to it as it is read instead, and no table is built
        (for callers that turn records into something smaller at once)."""
        table: dict[str, bytes] = {}

        def keep(record: ConsumedRecord) -> None:
            if record.value is None:
                table.pop(record.key, None)
            else:
                table[record.key] = record.value

        take = each or keep
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
                take(record)
                read += 1
                if record.partition in ends and record.offset + 1 >= ends[record.partition]:
                    del ends[record.partition]
            if progress:
                progress(read, total)
        return table

    def changes(self, timeout: float) -> list[ConsumedRecord]:
        """The records that arrived since the last call."""
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
            records.append(record_of(message))
        return records

    def close(self) -> None:
        self._consumer.close()
