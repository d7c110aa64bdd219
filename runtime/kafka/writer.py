"""The one Kafka producer seam: confluent-kafka with the settings every writer must use.

Idempotent with acks=all (no loss, no duplicates, per-partition order across retries),
``murmur2_random`` so keys land on the same partitions as faust/Java would put them, zstd
compression, and a short linger for latency. A background thread serves delivery reports.
"""

from __future__ import annotations

import logging
import threading

from confluent_kafka import KafkaError, KafkaException, Producer

from runtime.kafka.client_config import forget, passed_through, track
from runtime.logs import with_client_logging

log = logging.getLogger(__name__)

PRODUCER_SETTINGS = {
    "enable.idempotence": True,
    "acks": "all",
    "partitioner": "murmur2_random",
    "compression.type": "zstd",
    "linger.ms": 2,
    # Long enough to ride out a broker failover; idempotence keeps retries exact.
    "message.timeout.ms": 300_000,
}


class KafkaSink:
    """A RecordSink that writes to Kafka. ``close()`` flushes everything still in flight."""

    def __init__(self, bootstrap: str, client_id: str = "wayfinder", **overrides):
        self._producer = track(Producer(with_client_logging({
            "bootstrap.servers": bootstrap, "client.id": client_id, **PRODUCER_SETTINGS, **overrides,
            **passed_through()})))
        self.delivered = 0
        self.failed = 0
        self.fatal: KafkaError | None = None
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._serve_reports, name="kafka-delivery", daemon=True)
        self._poller.start()

    def publish(self, topic: str, key: str, value: bytes | None, headers: list[tuple[str, bytes]]) -> None:
        if self.fatal is not None:  # the idempotent producer cannot go on; the process must restart
            raise KafkaException(self.fatal)
        while True:
            try:
                self._producer.produce(topic, key=key.encode(), value=value, headers=headers, on_delivery=self._on_delivery)
                return
            except BufferError:  # the local queue is full: let deliveries drain, then retry
                self._producer.poll(0.05)

    def flush(self, timeout: float = 30.0) -> int:
        """Wait for every record in flight; returns how many are still undelivered."""
        return self._producer.flush(timeout)

    def close(self, timeout: float = 30.0) -> None:
        remaining = self.flush(timeout)
        forget(self._producer)
        self._stop.set()
        self._poller.join(timeout=2)
        if remaining:
            log.error("%d records were not delivered before shutdown", remaining)

    def _serve_reports(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)

    def _on_delivery(self, error, message) -> None:
        if error is None:
            self.delivered += 1
            return
        self.failed += 1
        log.error("delivery to %s failed: %s", message.topic(), error)
        if error.fatal():
            self.fatal = error  # raised to the writer on its next publish, not in this thread
