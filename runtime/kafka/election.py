"""Electing one leader among processes through a Kafka consumer group.

Every candidate joins the same group, subscribed to one topic with a single partition: the
member the group assigns that partition to is the leader. The group coordinator does the
rest: a member that leaves cleanly (``close()``) hands over at the next rebalance, which starts
at once; a member that dies is noticed after ``session.timeout.ms`` (the broker's
``group.min.session.timeout.ms`` is the floor: 6 s on a stock broker).

``cooperative-sticky`` assignment keeps the partition where it is when another member joins,
so starting a standby does not move the role. Rebalance callbacks run inside ``poll()``, so a
thread of its own polls the consumer all the time; heartbeats run in librdkafka's own thread.

Being elected is a claim, not a guarantee: a paused leader learns that it lost only when it
runs again. Whoever acts on the role must be fenced by other means (see transactions.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException

from runtime.kafka.client_config import forget, passed_through, refresh
from runtime.logs import with_client_logging

log = logging.getLogger(__name__)


class ElectionFailed(RuntimeError):
    """This candidate can never be elected (the broker refuses its membership)."""


class Election:
    """``leading`` is set while this member holds the topic's partition, and ``term`` counts
    the times it gained it; ``on_change(leading)`` is called from the election thread on every
    change."""

    def __init__(self, bootstrap: str, group: str, topic: str, session_timeout_ms: int,
                 on_change: Callable[[bool], None] | None = None, member: str = ""):
        self.group, self.topic = group, topic
        self.leading = threading.Event()
        self.term = 0
        self.session_timeout_ms = session_timeout_ms
        # Why the election cannot go on (the broker refused to let this member in), or None;
        # a candidate that can never be elected must say so and stop, not wait forever.
        self.failure: str | None = None
        self._logged: set[int] = set()
        self._on_change = on_change
        self._stop = threading.Event()
        self._consumer = Consumer(with_client_logging({
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": member or "wayfinder-election",
            "session.timeout.ms": session_timeout_ms,
            # Members learn of a rebalance (a clean leave included) from a heartbeat reply, so
            # the interval bounds a clean handover; heartbeats are cheap.
            "heartbeat.interval.ms": max(100, min(session_timeout_ms // 3, 500)),
            "partition.assignment.strategy": "cooperative-sticky",
            "enable.auto.commit": False,
            "auto.offset.reset": "latest",  # the records do not matter, only who holds the partition
            "enable.partition.eof": False,
            **passed_through(),
        }))
        self._thread = threading.Thread(target=self._run, name="election", daemon=True)

    def start(self) -> None:
        self._consumer.subscribe([self.topic], on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._revoked)
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Leave the group (a standby is assigned the partition at once) and stop the thread."""
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                refresh(self._consumer)
                message = self._consumer.poll(0.1)
                if message is not None and message.error():
                    error = message.error()
                    if error.code() == KafkaError.INVALID_SESSION_TIMEOUT:
                        self.failure = (f"the broker refuses a group session of {self.session_timeout_ms} ms "
                                        "(outside its group.min/max.session.timeout.ms); choose another "
                                        "--session-timeout-ms")
                    elif error.fatal():
                        self.failure = f"fatal consumer error: {error}"
                    if self.failure:
                        log.error("election: %s", self.failure)
                        break
                    if error.code() not in self._logged:  # once per kind: a broker outage repeats it
                        self._logged.add(error.code())
                        log.warning("election: %s", error)
        finally:
            self._set(False)
            forget(self._consumer)
            try:
                self._consumer.close()  # leaves the group: the next rebalance starts now
            except KafkaException as error:
                log.warning("election: leaving the group: %s", error)

    def _assigned(self, consumer, partitions) -> None:
        if partitions:
            self._set(True)

    def _revoked(self, consumer, partitions) -> None:
        if partitions:
            self._set(False)

    def _set(self, leading: bool) -> None:
        if leading == self.leading.is_set():
            return
        if leading:
            self.term += 1
            self.leading.set()
        else:
            self.leading.clear()
        log.info("election: %s the %s partition of group %s", "holding" if leading else "no longer holding",
                 self.topic, self.group)
        if self._on_change:
            self._on_change(leading)
