"""What bench/processor_throughput.py writes and watches: source records written as a
producer writes them, the processor's committed readiness marks, and the end offsets and
committed record counts of the namespace's topics. Not a bench itself."""

from __future__ import annotations

import secrets
import subprocess
import threading
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from runtime.kafka.reader import end_offsets, partitions_of
from runtime.kafka.status import decode_mark
from runtime.kafka.writer import PRODUCER_SETTINGS
from schemas.catalog import Catalog
from schemas.headers import Observation
from schemas.status import PROCESSOR_KEY, Mark, Positions

SOURCES = ("tasks", "agents", "frameworks", "cluster")
OUTPUTS = ("vips", "dns")
# A heartbeat-only mark comes every 5 s (schemas.status.HEARTBEAT_S); the processor writes one
# with every batch besides, so a mark that reaches the end arrives within a batch's time.
POLL_S = 0.02
WRITE_TIMEOUT_S = 120.0


class SourceWriter:
    """Source records as a producer writes them (same client settings, same headers), with a
    deep local queue so a burst is written as fast as the client can."""

    def __init__(self, bootstrap: str, catalog: Catalog):
        self.catalog = catalog
        self._producer = Producer({"bootstrap.servers": bootstrap, "client.id": "bench-processor-throughput",
                                   **PRODUCER_SETTINGS, "linger.ms": 5, "batch.num.messages": 10_000,
                                   "queue.buffering.max.messages": 2_000_000,
                                   "queue.buffering.max.kbytes": 2_000_000})
        self.failed: list[str] = []

    def write(self, alias: str, key: str, value: bytes | None) -> None:
        topic = self.catalog.topic(alias)
        headers = Observation.now().headers(topic.schema_id)
        while True:
            try:
                self._producer.produce(topic.name, key=key.encode(), value=value, headers=headers,
                                       on_delivery=self._delivered)
                self._producer.poll(0)
                return
            except BufferError:
                self._producer.poll(0.01)

    def _delivered(self, error, message) -> None:
        if error is not None and len(self.failed) < 10:
            self.failed.append(f"{message.topic()}: {error}")

    def flush(self, timeout: float = WRITE_TIMEOUT_S) -> None:
        remaining = self._producer.flush(timeout)
        if remaining or self.failed:
            raise RuntimeError(f"{remaining} records not delivered in {timeout:.0f}s; failures: {self.failed}")


class MarkWatch:
    """Follows the status topic (read_committed, so only marks of committed transactions), in
    a thread: the newest processor mark and when it arrived (monotonic)."""

    def __init__(self, bootstrap: str, catalog: Catalog):
        self.topic = catalog.topic("status").name
        self.latest: tuple[float, Mark] | None = None
        self.marks = 0
        self.error: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{secrets.token_hex(6)}",
                                   "enable.auto.commit": False, "isolation.level": "read_committed",
                                   "fetch.wait.max.ms": 5, "socket.nagle.disable": True})
        self._consumer.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])
        self._thread = threading.Thread(target=self._run, name="mark-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for message in self._consumer.consume(1000, 0.05):
                    if message.error() or message.key() != PROCESSOR_KEY.encode() or message.value() is None:
                        continue
                    mark = decode_mark(PROCESSOR_KEY, message.value())
                    if mark is not None:
                        with self._lock:
                            self.latest = (time.monotonic(), mark)
                            self.marks += 1
        except Exception as error:  # reported by wait(), which would otherwise wait for nothing
            self.error = f"{type(error).__name__}: {error}"

    def wait(self, done, deadline: float, process: subprocess.Popen) -> tuple[float, Mark] | None:
        """The first (arrival time, mark) with done(mark) true; None at the deadline."""
        while time.monotonic() < deadline:
            if self.error:
                raise RuntimeError(f"status watch failed: {self.error}")
            if process.poll() is not None:
                raise RuntimeError(f"the processor exited with {process.returncode}")
            with self._lock:
                latest = self.latest
            if latest is not None and done(latest[1]):
                return latest
            time.sleep(POLL_S)
        return None

    def newest(self) -> tuple[float, Mark] | None:
        with self._lock:
            return self.latest

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._consumer.close()


class Offsets:
    """End offsets of the namespace's topics, and committed records between two offsets."""

    def __init__(self, bootstrap: str, catalog: Catalog):
        self.bootstrap, self.catalog = bootstrap, catalog
        self._consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{secrets.token_hex(6)}",
                                   "enable.auto.commit": False, "isolation.level": "read_committed"})
        self._partitions = {alias: partitions_of(self._consumer, catalog.topic(alias).name, 30)
                            for alias in (*SOURCES, *OUTPUTS)}

    def ends(self, aliases) -> Positions:
        deadline = time.monotonic() + 30
        return {alias: end_offsets(self._consumer, self.catalog.topic(alias).name, self._partitions[alias], deadline)
                for alias in aliases}

    def count(self, alias: str, starts: dict[int, int], ends: dict[int, int], timeout: float = 120.0) -> int:
        """Committed data records of `alias` in [starts, ends) (transaction markers take offsets
        but are no records)."""
        topic = self.catalog.topic(alias).name
        wanted = {p: end for p, end in ends.items() if end > starts.get(p, 0)}
        if not wanted:
            return 0
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"bench-{secrets.token_hex(6)}",
                             "enable.auto.commit": False, "isolation.level": "read_committed",
                             "enable.partition.eof": True})
        try:
            consumer.assign([TopicPartition(topic, p, starts.get(p, 0)) for p in wanted])
            counted, deadline = 0, time.monotonic() + timeout
            while wanted and time.monotonic() < deadline:
                for message in consumer.consume(10_000, 0.2):
                    if message.error() is None and message.offset() < wanted.get(message.partition(), -1):
                        counted += 1
                for tp in consumer.position([TopicPartition(topic, p) for p in list(wanted)]):
                    if tp.offset >= wanted[tp.partition]:
                        del wanted[tp.partition]
            if wanted:
                raise TimeoutError(f"counting {topic}: partitions {sorted(wanted)} not read to their end in {timeout}s")
            return counted
        finally:
            consumer.close()

    def close(self) -> None:
        self._consumer.close()
