"""The active processor's half: publishing the stages' tables through a fenced, transactional
writer, and stepping down at the first sign of having lost the role.

- ``take_over``: a new transactional producer with the namespace's stable transactional id
  fences every older holder (its open transaction is aborted, and whatever it sends later is
  refused). Only then are the output topics read (read_committed, to their end), compared
  with the tables, and the difference published together with a ``processor`` mark, in one
  transaction.
- ``publish``: after that, each batch of source records is one transaction: the changed
  output keys (each once), the rejections, and the mark with the new positions. Every
  ``HEARTBEAT_S`` a transaction rewrites the mark alone.
- ``step_down``: on any producer error (fenced, fatal or otherwise) or a revoked role: abort,
  drop the producer, keep the tables. A writer that was fenced retries only once the
  election says again, after a whole session timeout, that the role is still this one's:
  a member paused and resumed may believe it leads for a moment, and retrying at once would
  fence the rightful active in turn.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from confluent_kafka import KafkaError, KafkaException

from processors.readiness import OutputProducers, previous_epoch, processor_mark, ready_outputs
from processors.stage import Stage
from runtime.kafka.reader import read_table
from runtime.kafka.transactions import TransactionalWriter
from runtime.metrics import PROCESSOR_ACTIVE, PROCESSOR_PUBLISHED, REJECTIONS
from schemas import codec
from schemas.catalog import Catalog
from schemas.headers import Observation
from schemas.rejections import Rejection
from schemas.status import HEARTBEAT_S, PROCESSOR_KEY, Mark, Positions

log = logging.getLogger(__name__)

TAKEOVER_TIMEOUT_S = 30.0
COMMIT_TIMEOUT_S = 30.0
RETRY_AFTER_ERROR_S = 1.0

# What the processor hands over at each step: positions of the sources (alias -> partition ->
# next offset), records of its sources not read yet, and the latest marks by key.
State = tuple[Positions, int, Mapping[str, Mark]]


class Publisher:
    def __init__(self, bootstrap: str, catalog: Catalog, stages: list[Stage], producers: OutputProducers,
                 instance: str, started_at: float, session_timeout_s: float):
        self.bootstrap, self.catalog, self.stages, self.producers = bootstrap, catalog, stages, producers
        self.instance, self.started_at = instance, started_at
        self.session_timeout_s = session_timeout_s
        self.transactional_id = catalog.processor_transactional_id
        self.writer: TransactionalWriter | None = None
        self.epoch = 0
        self.ready_outputs: list[str] = []
        self.synced_at: float | None = None
        self.last_mark_at = 0.0
        self._retry_at = 0.0  # no takeover before this (monotonic), after any error
        self._fenced_term, self._fenced_until = -1, 0.0  # nor in a term this one was fenced in, before then

    @property
    def active(self) -> bool:
        return self.writer is not None

    def may_take_over(self, term: int) -> bool:
        now = time.monotonic()
        return now >= self._retry_at and (term != self._fenced_term or now >= self._fenced_until)

    def take_over(self, term: int, state: Callable[[], State], rejections: list[Rejection], still_leading: Callable[[], bool]) -> None:
        started = time.monotonic()
        writer = TransactionalWriter(self.bootstrap, self.transactional_id, client_id=self.instance)
        try:
            writer.start(TAKEOVER_TIMEOUT_S)  # fences every older holder of the role
            if not still_leading():
                writer.close()
                return
            self.writer = writer
            published = {stage: read_table(self.bootstrap, self.catalog.topic(stage.output).name, TAKEOVER_TIMEOUT_S)
                         for stage in self.stages}
            positions, lag, marks = state()
            self.epoch = previous_epoch(marks) + 1
            self.synced_at = None
            writer.begin()
            written, by_output = 0, {}
            for stage in self.stages:
                stage.reseed(published[stage])
                by_output[stage.output] = stage.publish_difference(writer, published[stage])
                written += by_output[stage.output]
            self._publish_rejections(rejections)
            self._publish_mark(positions, lag, marks)
            writer.commit(COMMIT_TIMEOUT_S)
            self._count(by_output, rejections)
            PROCESSOR_ACTIVE.set(1)
        except (KafkaException, TimeoutError, LookupError, RuntimeError) as error:
            if self.writer is None:
                writer.close()
            self._failed(term, "taking over", error)
            return
        log.warning("processor %s is active (epoch %d, election term %d) after %.2fs: the outputs held %s; %d records "
                    "published to catch them up, %d rejections", self.instance, self.epoch, term,
                    time.monotonic() - started, ", ".join(f"{len(published[s])} {s.output}" for s in self.stages),
                    written, len(rejections))

    def publish(self, term: int, state: State, rejections: list[Rejection], sources_changed: bool) -> None:
        """One transaction when there is something to say: source changes, rejections, a change
        of readiness, or a heartbeat due."""
        positions, lag, marks = state
        ready = ready_outputs(positions, marks, self.producers)
        due = time.monotonic() - self.last_mark_at >= HEARTBEAT_S
        if not (sources_changed or rejections or ready != self.ready_outputs or due):
            return
        try:
            self.writer.begin()
            by_output = {stage.output: stage.publish_pending(self.writer) for stage in self.stages}
            self._publish_rejections(rejections)
            self._publish_mark(positions, lag, marks)
            self.writer.commit(COMMIT_TIMEOUT_S)
        except KafkaException as error:
            self._failed(term, "publishing", error)
            return
        self._count(by_output, rejections)

    def _count(self, by_output: Mapping[str, int], rejections: list[Rejection]) -> None:
        """The metrics of a committed transaction (an aborted one published nothing)."""
        for output, written in by_output.items():
            if written:
                PROCESSOR_PUBLISHED.labels(self.catalog.topic(output).name).inc(written)
        for rejection in rejections:
            REJECTIONS.labels(rejection.source).inc()

    def step_down(self, why: str, expected: bool = False) -> None:
        """Give up the role; `expected` (a clean stop) is said at INFO, anything else warned of."""
        if self.writer is None:
            return
        self.writer.abort()
        self.writer.close()
        self.writer = None
        self.ready_outputs = []
        PROCESSOR_ACTIVE.set(0)
        log.log(logging.INFO if expected else logging.WARNING, "processor %s stepped down: %s", self.instance, why)

    def _failed(self, term: int, doing: str, error: Exception) -> None:
        kafka_error = error.args[0] if isinstance(error, KafkaException) and error.args else None
        fenced = isinstance(kafka_error, KafkaError) and (kafka_error.fatal() or kafka_error.code() == KafkaError._FENCED)
        if self.writer is None and not fenced:
            log.warning("processor %s could not take over: %s", self.instance, error)
        self.step_down(f"{'fenced by a newer instance' if fenced else 'producer error'} while {doing}: {error}")
        self._retry_at = time.monotonic() + RETRY_AFTER_ERROR_S
        if fenced:
            self._fenced_term, self._fenced_until = term, time.monotonic() + self.session_timeout_s + 1.0

    def _publish_rejections(self, rejections: list[Rejection]) -> None:
        topic = self.catalog.topic("rejections")
        for rejection in rejections:
            self.writer.publish(topic.name, rejection.source, codec.encode(rejection),
                                Observation.now().headers(topic.schema_id))

    def _publish_mark(self, positions: Positions, lag: int, marks: Mapping[str, Mark]) -> None:
        now = time.time()
        self.ready_outputs = ready_outputs(positions, marks, self.producers)
        if self.ready_outputs and self.synced_at is None:
            self.synced_at = now
        mark = processor_mark(instance=self.instance, started_at=self.started_at, now=now, epoch=self.epoch,
                              positions=positions, lag=lag, ready_outputs=self.ready_outputs, outputs=self.producers,
                              synced_at=self.synced_at)
        topic = self.catalog.topic("status")
        value = codec.encode(mark)
        self.writer.publish(topic.name, PROCESSOR_KEY, value, Observation.now().headers(topic.schema_id))
        self.last_mark_at = time.monotonic()
