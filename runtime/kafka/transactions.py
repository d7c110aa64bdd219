"""The transactional producer seam: a writer whose records land all together or not at all,
and which a newer instance of the same writer fences.

Every instance of one logical writer (the namespace's processor) uses the same stable
``transactional.id``. ``start()`` (librdkafka's init_transactions) bumps the producer epoch at
the transaction coordinator: the broker aborts the older instance's open transaction, and
refuses everything that older instance sends afterwards with a fatal "fenced" error. A paused
process that wakes up after another took its role therefore cannot commit anything, whatever
it believes about its role.

Readers must read ``read_committed`` (librdkafka's default) to see only committed records.
"""

from __future__ import annotations

import logging

from confluent_kafka import KafkaException, Producer

from runtime.kafka.client_config import forget, passed_through, track
from runtime.kafka.writer import PRODUCER_SETTINGS
from runtime.logs import with_client_logging

log = logging.getLogger(__name__)

# A transaction holds back every read_committed reader of its partitions until it ends, and a
# writer killed mid-transaction leaves it open until a newer instance fences it or this
# timeout passes. A batch takes milliseconds, so 30 s is ample. librdkafka requires
# message.timeout.ms <= transaction.timeout.ms; a delivery that fails within it aborts the
# transaction, and the processor then re-publishes from its tables (nothing is lost).
TRANSACTION_TIMEOUT_MS = 30_000
QUEUE_MESSAGES = 2_000_000


class TransactionalWriter:
    """A RecordSink inside transactions: ``start()`` once, then ``begin()``, ``publish()``..., ``commit()``.

    Every method raises ``KafkaException`` on failure; a fenced writer's error is fatal, and
    the caller then drops the writer (there is no way back for that instance).
    """

    def __init__(self, bootstrap: str, transactional_id: str, client_id: str = "wayfinder"):
        self.transactional_id = transactional_id
        self._producer = track(Producer(with_client_logging({
            "bootstrap.servers": bootstrap,
            "client.id": client_id,
            **PRODUCER_SETTINGS,
            "transactional.id": transactional_id,
            "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
            "message.timeout.ms": TRANSACTION_TIMEOUT_MS,
            # A takeover publishes a whole table in one transaction (over a million record sets
            # at 100,000 tasks): with librdkafka's default queue of 100,000 messages the writer
            # would wait on the queue again and again instead of handing records on.
            "queue.buffering.max.messages": QUEUE_MESSAGES,
            **passed_through(),
        })))
        self.in_transaction = False

    def start(self, timeout: float) -> None:
        """Register this instance: fences every older one and aborts its open transaction."""
        self._producer.init_transactions(timeout)

    def begin(self) -> None:
        self._producer.begin_transaction()
        self.in_transaction = True

    def publish(self, topic: str, key: str, value: bytes | None, headers: list[tuple[str, bytes]]) -> None:
        while True:
            try:
                self._producer.produce(topic, key=key.encode(), value=value, headers=headers)
                return
            except BufferError:  # the local queue is full: let it drain, then retry
                self._producer.poll(0.05)

    def commit(self, timeout: float) -> None:
        """Deliver everything published since ``begin()`` and commit it (raises if it could not)."""
        self._producer.commit_transaction(timeout)
        self.in_transaction = False

    def abort(self, timeout: float = 5.0) -> None:
        """Abort the open transaction if the producer still can; a fenced one cannot, and the
        broker has aborted it already."""
        if not self.in_transaction:
            return
        self.in_transaction = False
        try:
            self._producer.abort_transaction(timeout)
        except KafkaException as error:
            log.info("abort of %s's transaction: %s", self.transactional_id, error)

    def close(self) -> None:
        """Drop whatever is still queued: a writer is closed only after a commit or on stepping down."""
        forget(self._producer)
        self._producer.purge()
        self._producer.flush(0)
