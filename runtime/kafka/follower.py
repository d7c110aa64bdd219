"""Following a compacted topic as a table: catch up to the end first, then apply changes.

Appliers must never prune before the first catch-up (ARCHITECTURE.md), so ``catch_up``
returns only when every partition has been read to the end offset it had at the start,
reporting progress on the way; ``changes`` then yields the records that follow.

"Read to the end" is decided by the consumer's position, never by the offset of the last
record seen: derived topics are written in Kafka transactions, so a partition's last offset
is usually a commit marker, which is never delivered as a message, and records of aborted
transactions are skipped without a trace. The position (the next offset the consumer will
fetch) moves past both, and a partition-EOF event reports where the end was when reached.
``isolation.level`` is ``read_committed`` (librdkafka's default, stated here because the
readiness chain depends on it): a record is seen only once its transaction committed, and
the end offsets queried are then the last stable offsets.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from runtime.kafka.reader import (ConsumedRecord, Halted, end_offsets, partitions_of, record_of, recoverable,
                                  watermarks)
from runtime.kafka.client_config import forget, passed_through, refresh, unjoined_group_id
from runtime.logs import with_client_logging

# partition -> offset (the next one to read)
Offsets = dict[int, int]


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
        # The total is an estimate from offsets (compaction and transaction markers make it an
        # upper bound, a record written meanwhile can exceed it): never report past 100%.
        read = self.read = min(read, total)
        if total and (now - self._logged_at >= self.every_s or read >= total):
            self._logged_at = now
            self.log.info("%s: catching up %d/%d records (%.0f%%)", self.what, read, total, 100.0 * read / total)


class TableFollower:
    """One topic, every partition assigned (never a group), read from the beginning.

    Used from one thread only (the confluent consumer is not thread-safe), except `halt`: set
    from anywhere, it makes a catch-up or an end-offsets request in progress raise Halted
    within a second, so a node stops while Kafka is unreachable or a big table loads."""

    def __init__(self, bootstrap: str, topic: str):
        self.topic = topic
        self.halt = threading.Event()
        self._partitions: list[int] = []
        self._eof: Offsets = {}  # partition -> the end offset its last EOF event reported
        self._logged: set[int] = set()  # error codes already logged
        self._consumer = Consumer(
            with_client_logging({
                "bootstrap.servers": bootstrap,
                "group.id": unjoined_group_id(),  # never joined: partitions are assigned
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "enable.partition.eof": True,
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
                **passed_through(),
            })
        )

    def end_offsets(self, timeout: float = 30.0) -> Offsets:
        """Every partition's end now (the last stable offset, under read_committed): a
        position at or past it has seen everything committed before this call."""
        deadline = time.monotonic() + timeout
        if not self._partitions:
            self._partitions = partitions_of(self._consumer, self.topic, timeout, self.halt)
        return end_offsets(self._consumer, self.topic, self._partitions, deadline, self.halt)

    def reached(self, ends: Offsets) -> bool:
        """True once every partition has been read up to `ends` (control records and aborted
        records included, which are never delivered)."""
        positions = self.positions()
        return all(max(positions.get(p, 0), self._eof.get(p, 0)) >= end for p, end in ends.items())

    def positions(self) -> Offsets:
        """The next offset to read, per assigned partition (0 before anything was read)."""
        if not self._partitions:
            return {}
        found = self._consumer.position([TopicPartition(self.topic, p) for p in self._partitions])
        return {tp.partition: max(tp.offset, 0) for tp in found}

    def catch_up(self, timeout: float = 120.0, progress: Callable[[int, int], None] | None = None,
                 each: Callable[[ConsumedRecord], None] | None = None) -> dict[str, bytes]:
        """Read every partition to its end as of now; returns the table (tombstones dropped).
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
        ends = self.end_offsets(timeout)
        starts = {p: watermarks(self._consumer, TopicPartition(self.topic, p), deadline, self.halt)[0] for p in ends}
        ends = {p: end for p, end in ends.items() if end > starts[p]}  # nothing left to read in the others
        # An estimate for progress: compaction and transaction markers make it an upper bound.
        total = sum(max(ends[p] - starts[p], 0) for p in ends)
        self._consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in self._partitions])
        read = 0
        while not self.reached(ends):
            if self.halt.is_set():
                raise Halted(self.topic)
            if time.monotonic() > deadline:
                raise TimeoutError(f"catching up on {self.topic} took longer than {timeout}s")
            for record in self._poll(10_000, 0.2):
                take(record)
                read += 1
            if progress:
                progress(read, total)
        if progress:
            progress(total, total)
        return table

    def changes(self, timeout: float) -> list[ConsumedRecord]:
        """The records that arrived since the last call."""
        return self._poll(10_000, timeout)

    def _poll(self, limit: int, timeout: float) -> list[ConsumedRecord]:
        refresh(self._consumer)
        first = self._consumer.poll(timeout)
        if first is None:
            return []
        messages = [first] + self._consumer.consume(limit - 1, 0)  # what is already buffered, no waiting
        records = []
        for message in messages:
            error = message.error()
            if error:
                if error.code() == KafkaError._PARTITION_EOF:
                    self._eof[message.partition()] = message.offset()
                recoverable(error, self.topic, self._logged)  # a node keeps serving meanwhile
                continue
            records.append(record_of(message))
        return records

    def close(self) -> None:
        forget(self._consumer)
        self._consumer.close()
