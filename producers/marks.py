"""A producer side's readiness mark in the ``status`` topic (schemas/status.py).

The processor counts its outputs as ready only once it has consumed the sources up to the
positions a producer marked after a full sync. So ``synced`` first flushes (every record of
the sync is delivered), then reads the end offsets of the side's tables: they cover every
record of that sync. A lost stream flips ``in_sync`` off at once, keeping the last sync's
time and positions. The mark is rewritten every HEARTBEAT_S so a reader can tell a silent
producer from a quiet cluster.
"""

from __future__ import annotations

import asyncio
import logging
import time

import msgspec
from confluent_kafka import Consumer

from runtime.kafka.client_config import forget, passed_through, refresh, unjoined_group_id
from runtime.kafka.reader import end_offsets, partitions_of
from runtime.kafka.writer import KafkaSink
from runtime.logs import with_client_logging
from schemas import codec
from schemas.catalog import Catalog
from schemas.headers import Observation
from schemas.status import HEARTBEAT_S, Mark, Positions, producer_key

log = logging.getLogger(__name__)

FLUSH_TIMEOUT_S = 30.0


class EndOffsets:
    """Reads the end offsets of topics (one consumer, never subscribed, kept for reuse)."""

    def __init__(self, bootstrap: str):
        self._consumer = Consumer(with_client_logging({
            "bootstrap.servers": bootstrap,
            "group.id": unjoined_group_id(),  # required by the client; never joined
            "enable.auto.commit": False,
            **passed_through(),
        }))

    def of(self, topic: str, timeout: float = 10.0) -> dict[int, int]:
        deadline = time.monotonic() + timeout
        refresh(self._consumer)
        return end_offsets(self._consumer, topic, partitions_of(self._consumer, topic, timeout), deadline)

    def close(self) -> None:
        forget(self._consumer)
        self._consumer.close()


class ProducerMarks:
    """The mark of one producer side (``mesos`` or ``marathon``), key ``producer/<source>``."""

    def __init__(
        self,
        sink: KafkaSink,
        offsets: EndOffsets,
        catalog: Catalog,
        source: str,
        aliases: tuple[str, ...],
        instance: str,
        started_at: float,
    ):
        self._sink = sink
        self._offsets = offsets
        self._status = catalog.topic("status")
        self._topics = {alias: catalog.topic(alias).name for alias in aliases}
        self.key = producer_key(source)
        self.mark = Mark(role="producer", instance=instance, started_at=started_at, heartbeat_at=time.time(), in_sync=False)
        self.syncs = 0

    async def synced(self) -> None:
        """After a full sync was published: flush, read the tables' end offsets, mark in sync."""
        undelivered = await asyncio.to_thread(self._sink.flush, FLUSH_TIMEOUT_S)
        if undelivered:
            log.warning("%s: %d records still undelivered after %ss; not marking in sync", self.key, undelivered, FLUSH_TIMEOUT_S)
            return
        positions = await asyncio.to_thread(self._positions)
        now = time.time()
        self.mark = msgspec.structs.replace(self.mark, in_sync=True, synced_at=now, positions=positions, heartbeat_at=now)
        self.syncs += 1
        self._write()

    def lost(self) -> None:
        """The stream is gone: not in sync any more (the last sync's time and positions stay)."""
        if self.mark.in_sync:
            self.mark = msgspec.structs.replace(self.mark, in_sync=False, heartbeat_at=time.time())
            self._write()

    async def heartbeat(self, stop: asyncio.Event) -> None:
        """Rewrite the mark every HEARTBEAT_S with a fresh ``heartbeat_at``, until ``stop``."""
        self._write()
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), HEARTBEAT_S)
            except asyncio.TimeoutError:
                self.beat()

    def beat(self) -> None:
        """Rewrite the mark as it is, with a fresh ``heartbeat_at`` (also the last one at a stop,
        which tells the next run where its history gap begins)."""
        self.mark = msgspec.structs.replace(self.mark, heartbeat_at=time.time())
        self._write()

    def _positions(self) -> Positions:
        return {alias: self._offsets.of(topic) for alias, topic in self._topics.items()}

    def _write(self) -> None:
        headers = Observation.now().headers(self._status.schema_id)
        self._sink.publish(self._status.name, self.key, codec.encode(self.mark), headers)
