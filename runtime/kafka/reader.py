"""Reading topics: a whole topic up to its end (to rebuild a table), or following it live.

Readers assign every partition themselves instead of joining a consumer group: every node
and every tool needs all partitions, and a group would only add rebalances.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, KafkaException, TopicPartition

from runtime.kafka.client_config import forget, passed_through, refresh, unjoined_group_id
from runtime.logs import with_client_logging

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConsumedRecord:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: str | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


def _consumer(bootstrap: str) -> Consumer:
    return Consumer(
        with_client_logging({
            "bootstrap.servers": bootstrap,
            "group.id": unjoined_group_id(),  # required by the client; never joined
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            # Only what a transaction committed (librdkafka's default, stated because the
            # processor's outputs are written in transactions).
            "isolation.level": "read_committed",
            **passed_through(),
        })
    )


class Halted(Exception):
    """The caller's halt event was set while waiting on Kafka: a requested stop, no error."""


def partitions_of(consumer: Consumer, topic: str, timeout: float, halt: threading.Event | None = None) -> list[int]:
    """The topic's partitions. A topic created a moment ago may not have reached every
    broker's metadata yet, so a missing topic is asked for again until ``timeout``, or until
    ``halt`` is set (raises Halted): each request waits at most a second for that."""
    deadline = time.monotonic() + timeout
    while True:
        if halt is not None and halt.is_set():
            raise Halted(topic)
        try:
            wait = max(0.1, min(1.0, deadline - time.monotonic()))
            metadata = consumer.list_topics(topic, timeout=wait).topics.get(topic)
        except KafkaException as error:
            # No broker answered (one not up yet, at a cold start of everything at once): the
            # same as a topic not there yet for whoever waits for it, not a crash.
            if error.args[0].fatal() or time.monotonic() > deadline:
                raise LookupError(f"topic {topic!r}: no broker answered ({error.args[0].str()})") from None
            log.warning("no Kafka broker answers yet (%s); retrying", error.args[0].str())
            time.sleep(0.5)
            continue
        if metadata is not None and metadata.error is None and metadata.partitions:
            return sorted(metadata.partitions)
        if time.monotonic() > deadline:
            if metadata is not None and metadata.error is not None and (
                    metadata.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED):
                # A secured cluster hides what a role may not read: say so, not "missing".
                raise LookupError(f"topic {topic!r}: this client's user may not read it "
                                  "(`wayfinder kafka acls` lists who may)")
            raise LookupError(f"topic {topic!r} does not exist")
        time.sleep(0.1)


def record_of(message) -> ConsumedRecord:
    key = message.key()
    return ConsumedRecord(
        topic=message.topic(),
        partition=message.partition(),
        offset=message.offset(),
        timestamp_ms=message.timestamp()[1],
        key=key.decode("utf-8", errors="replace") if key is not None else None,
        value=message.value(),
        headers=list(message.headers() or []),
    )


def recoverable(error: KafkaError, topic: str, logged: set[int]) -> bool:
    """Whether a reader may go on past this consumer error (True), or must stop (a fatal one
    raises RuntimeError). End-of-partition events pass silently; anything else the client
    recovers from by itself (a broker away, a new topic's leader not elected yet) is logged
    once per kind, since an outage repeats it on every poll."""
    if error.code() == KafkaError._PARTITION_EOF:
        return True
    if error.fatal():
        raise RuntimeError(f"reading {topic}: {error}")
    if error.code() not in logged:
        logged.add(error.code())
        log.warning("reading %s: %s (the client retries)", topic, error)
    return True


# Errors of a partition whose leader is being elected or announced (a new topic, or a
# broker that just died): asking again shortly succeeds.
_SETTLING = (
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._TIMED_OUT,
    KafkaError._TRANSPORT,
    KafkaError._DESTROY_BROKER,
    # A new leader answers this until its high watermark has caught up with the followers'
    # (right after a broker of three died or came back).
    KafkaError.OFFSET_NOT_AVAILABLE,
)


REQUEST_WAIT_S = 5.0


def watermarks(consumer: Consumer, partition: TopicPartition, deadline: float,
               halt: threading.Event | None = None) -> tuple[int, int]:
    """Low and high offsets; retried while a new topic's leader is still taking over, or
    while a killed leader's partition moves to another broker. Each request waits at most a
    second with ``halt`` (a set halt raises Halted), else at most REQUEST_WAIT_S: a request
    sent to a leader that just died times out, and the next one, after a metadata refresh,
    goes to the new leader (seen in CI: one request waiting out a 30 s deadline)."""
    while True:
        if halt is not None and halt.is_set():
            raise Halted(partition.topic)
        wait = max(deadline - time.monotonic(), 0.1)
        try:
            return consumer.get_watermark_offsets(partition, timeout=min(wait, 1.0 if halt is not None else REQUEST_WAIT_S))
        except KafkaException as error:
            settling = (error.args[0].retriable() or error.args[0].code() in _SETTLING
                        or error.args[0].code() == KafkaError._TIMED_OUT)
            if not settling or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def end_offsets(consumer: Consumer, topic: str, partitions: list[int], deadline: float,
                halt: threading.Event | None = None) -> dict[int, int]:
    """Each partition's end offset now (the last stable offset, under read_committed)."""
    return {p: watermarks(consumer, TopicPartition(topic, p), deadline, halt)[1] for p in partitions}


def read_to_end(bootstrap: str, topic: str, timeout: float = 30.0) -> list[ConsumedRecord]:
    """Every record of ``topic`` from offset 0 to the end offsets seen at the start."""
    logged: set[int] = set()
    consumer = _consumer(bootstrap)
    try:
        ends = {}
        deadline = time.monotonic() + timeout
        for partition in partitions_of(consumer, topic, timeout):
            low, high = watermarks(consumer, TopicPartition(topic, partition), deadline)
            if high > low:
                ends[partition] = high
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        records: list[ConsumedRecord] = []
        while ends:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} did not reach its end offsets within {timeout}s")
            # poll returns with the first record that arrives, then consume takes what is already
            # buffered without waiting: consume alone would wait out its whole timeout unless a
            # full batch came, 200 ms at least for every table a takeover or a command reads.
            first = consumer.poll(0.2)
            for message in [first, *consumer.consume(9_999, 0)] if first is not None else []:
                if message.error() and recoverable(message.error(), topic, logged):
                    continue  # bounded by the deadline all the same
                if message.offset() < ends.get(message.partition(), 0):
                    records.append(record_of(message))
            for partition in reached_ends(consumer, topic, ends):
                del ends[partition]
        return records
    finally:
        consumer.close()


def reached_ends(consumer: Consumer, topic: str, ends: dict[int, int]) -> list[int]:
    """The partitions in ``ends`` whose read position has reached its end offset.

    Compare positions, not the offsets of the records read: a transactional writer ends each
    transaction with a commit marker, which takes an offset but is never handed to a reader,
    so the last record of a partition is often one below its end offset minus one.
    """
    positions = consumer.position([TopicPartition(topic, p) for p in ends])
    return [tp.partition for tp in positions if tp.offset >= 0 and tp.offset >= ends[tp.partition]]


def read_table(bootstrap: str, topic: str, timeout: float = 30.0) -> dict[str, bytes]:
    """The table a compacted topic holds: the last value of each key, tombstones dropped."""
    latest: dict[str, bytes | None] = {}
    for record in read_to_end(bootstrap, topic, timeout):
        if record.key is not None:
            latest[record.key] = record.value
    return {key: value for key, value in latest.items() if value is not None}


def follow(
    bootstrap: str, topic: str, from_beginning: bool, deadline: float | None = None, stop: threading.Event | None = None,
    wait_for_topic: bool = False,
) -> Iterator[ConsumedRecord]:
    """Records of every partition as they arrive, until the monotonic ``deadline`` or ``stop``.
    A missing topic raises LookupError after 10 s, unless ``wait_for_topic`` (a node started
    before anyone created it waits as long as it runs). Errors the client recovers from by
    itself (a broker away, a new topic's leader not elected yet) are logged, once per kind."""

    def running() -> bool:
        return (deadline is None or time.monotonic() < deadline) and not (stop and stop.is_set())

    consumer = _consumer(bootstrap)
    try:
        while True:
            try:
                partitions = partitions_of(consumer, topic, 10.0, halt=stop)
                break
            except Halted:
                return
            except LookupError as missing:
                if stop is not None and stop.is_set():
                    return  # asked to stop while it waited: a stop, not a missing topic
                if not wait_for_topic or not running():
                    raise
                log.warning("waiting for %s", missing)
        start = OFFSET_BEGINNING if from_beginning else OFFSET_END
        consumer.assign([TopicPartition(topic, p, start) for p in partitions])
        logged: set[int] = set()
        while running():
            wait = 0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic()))
            refresh(consumer)
            message = consumer.poll(wait)
            if message is None:
                continue
            if message.error() and recoverable(message.error(), topic, logged):
                continue
            yield record_of(message)
    finally:
        forget(consumer)
        consumer.close()


class PartitionsFollower:
    """Every partition of several topics, from offset 0, read in batches: what a processor
    follows to keep whole tables of its sources in memory.

    ``positions`` says how far each partition has been read (topic -> partition -> next
    offset), which is what a processor's readiness mark reports. Partitions are assigned, not
    joined through a group, so every follower sees everything.
    """

    def __init__(self, bootstrap: str, topics: list[str], timeout: float = 30.0,
                 halt: threading.Event | None = None):
        """With `halt`, a topic that is missing waits (logged once per topic) until it is there
        or `halt` is set (raises Halted): on a secured cluster each topic's writer creates it,
        so a processor may start before the producer made its sources."""
        self.topics = list(topics)
        self._logged: set[int] = set()  # error codes already logged
        self._consumer = Consumer(
            with_client_logging({
                "bootstrap.servers": bootstrap,
                "group.id": unjoined_group_id(),  # never joined: partitions are assigned
                "enable.auto.commit": False,
                "enable.partition.eof": False,
                "isolation.level": "read_committed",
                "fetch.wait.max.ms": 10,
                "socket.nagle.disable": True,
                # A full queue postpones the next fetch by this much (default 1 s): a catch-up hits
                # it all the time, and the first changes after it would wait.
                "fetch.queue.backoff.ms": 5,
                **passed_through(),
            })
        )
        deadline = time.monotonic() + timeout
        self.positions: dict[str, dict[int, int]] = {}
        assignment = []
        for topic in self.topics:
            partitions = self._partitions_of(topic, timeout, halt)
            self.positions[topic] = {p: watermarks(self._consumer, TopicPartition(topic, p), deadline)[0] for p in partitions}
            assignment += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions]
        self._assignment = [TopicPartition(tp.topic, tp.partition) for tp in assignment]
        self._consumer.assign(assignment)

    def _partitions_of(self, topic: str, timeout: float, halt: threading.Event | None) -> list[int]:
        while True:
            try:
                return partitions_of(self._consumer, topic, timeout if halt is None else 2.0, halt)
            except LookupError as missing:
                if halt is None:
                    self.close()
                    raise
                log.warning("waiting: %s", missing)  # the repeat filter keeps this to one a window
            except Halted:
                self.close()
                raise

    def end_offsets(self, timeout: float = 10.0) -> dict[str, dict[int, int]]:
        """The end offset of every partition now (asks the brokers)."""
        deadline = time.monotonic() + timeout
        return {topic: end_offsets(self._consumer, topic, list(partitions), deadline)
                for topic, partitions in self.positions.items()}

    def reached(self, ends: dict[str, dict[int, int]]) -> bool:
        return all(self.positions[t][p] >= end for t, by_partition in ends.items() for p, end in by_partition.items())

    def lag(self, topics: Iterable[str] | None = None) -> int:
        """Records not read yet in ``topics`` (default all), by the end offsets the last fetches
        reported (no request)."""
        behind = 0
        chosen = self.positions.keys() if topics is None else set(topics)
        for topic, partitions in self.positions.items():
            if topic not in chosen:
                continue
            for partition, position in partitions.items():
                try:
                    high = self._consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)[1]
                except KafkaException:
                    continue
                behind += max(0, high - position) if high >= 0 else 0
        return behind

    def poll(self, limit: int, timeout: float, linger: float = 0.0) -> list[ConsumedRecord]:
        """Up to ``limit`` records: waits up to ``timeout`` for the first, then up to ``linger``
        for more (a burst of changes then makes one batch, not one each)."""
        refresh(self._consumer)
        first = self._consumer.poll(timeout)
        messages = [first] + self._consumer.consume(limit - 1, linger) if first is not None else []
        records = []
        for message in messages:
            if message.error() and recoverable(message.error(), message.topic(), self._logged):
                continue
            records.append(record_of(message))
        # Positions, not record offsets: they also step over transaction markers.
        for tp in self._consumer.position(self._assignment):
            if tp.offset >= 0:
                self.positions[tp.topic][tp.partition] = tp.offset
        return records

    def close(self) -> None:
        forget(self._consumer)
        self._consumer.close()
