"""`wayfinder produce`: both producers in one process, sharing one Kafka writer.

Start-up reads what the topics hold, so the first snapshot publishes only the difference,
and the previous run's readiness marks, so the gap between that run and this one is
recorded in the history. Each side runs on its own: a side that fails is restarted after
a pause and never takes the other down. Only a fatal Kafka error ends the process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import aiohttp
from confluent_kafka import KafkaException

from producers.backoff import Backoff
from runtime.blocking import sleep_or_stop
from producers.documents import MAX_DOCUMENT_BYTES
from producers.history_gap import Gap
from producers.marathon.client import MarathonClient
from producers.marathon.loop import MarathonLoop
from producers.marathon.observer import MarathonObserver
from producers.marathon.sse import MAX_EVENT_BYTES, MAX_LINE_BYTES
from producers.marks import EndOffsets, ProducerMarks
from producers.mesos.client import MesosClient
from producers.mesos.loop import MesosLoop
from producers.mesos.normalize import master_of
from producers.mesos.observer import MesosObserver
from producers.mesos.recordio import MAX_RECORD_BYTES
from producers.publisher import Publisher
from producers.record_check import MAX_VALUE_BYTES
from runtime.kafka.reader import read_table
from runtime.kafka.topics import ensure_topics_until
from runtime.kafka.writer import KafkaSink
from runtime.logs import set_log_context
from schemas import codec
from schemas.catalog import DEFAULT_CATALOG, Catalog
from schemas.status import Mark, instance_name, producer_key

log = logging.getLogger(__name__)

MESOS_TABLES = ("cluster", "agents", "frameworks", "tasks")
MARATHON_TABLES = ("apps", "app-tasks")


@dataclass
class ProducerOptions:
    bootstrap: str
    catalog: Catalog = DEFAULT_CATALOG
    mesos_url: str | None = None
    marathon_url: str | None = None
    masters: list[str] = field(default_factory=list)
    mesos_poll_only: bool = False
    mesos_poll_interval: float = 2.0
    marathon_resync_interval: float = 180.0
    marathon_silence_timeout: float = 60.0
    recovery_grace: float = 10.0
    recovery_timeout: float = 600.0
    # Input bounds: a whole document, one RecordIO frame, one SSE line and event, one record.
    max_document_bytes: int = MAX_DOCUMENT_BYTES
    max_record_bytes: int = MAX_RECORD_BYTES
    max_sse_line_bytes: int = MAX_LINE_BYTES
    max_sse_event_bytes: int = MAX_EVENT_BYTES
    max_value_bytes: int = MAX_VALUE_BYTES


async def _actual(bootstrap: str, catalog: Catalog, aliases: tuple[str, ...]) -> dict[str, dict[str, bytes]]:
    return {alias: await asyncio.to_thread(read_table, bootstrap, catalog.topic(alias).name) for alias in aliases}


def previous_gap(marks: dict[str, bytes], source: str) -> Gap | None:
    """The gap since the previous run of this side, from its last mark; None on a first run.

    A run that was in sync watched until its last heartbeat. One that had lost its stream
    watched only until some moment after its last full sync, so that is where the gap starts.
    """
    value = marks.get(producer_key(source))
    if value is None:
        return None
    try:
        mark = codec.decode(value, Mark)
    except ValueError:
        return None
    since = mark.heartbeat_at if mark.in_sync else (mark.synced_at or mark.heartbeat_at)
    return Gap(since, "producer restart")


class Producers:
    """Both loops, built from options; `run` until `stop` is set, then flush."""

    def __init__(self, options: ProducerOptions):
        if not (options.mesos_url or options.marathon_url):
            raise ValueError("give --mesos, --marathon or both")
        self.options = options
        self.loops: list[MesosLoop | MarathonLoop] = []
        self.publishers: list[Publisher] = []
        self.marks: list[ProducerMarks] = []
        self.started_at = time.time()
        self.instance = instance_name()

    async def run(self, stop: asyncio.Event, started: asyncio.Event | None = None) -> None:
        options = self.options
        if not await ensure_topics_until(options.bootstrap, options.catalog, stop, role="producer"):
            return
        sink = KafkaSink(options.bootstrap, client_id="wayfinder-producer")
        offsets = EndOffsets(options.bootstrap)
        previous_marks = await asyncio.to_thread(read_table, options.bootstrap, options.catalog.topic("status").name)
        try:
            async with aiohttp.ClientSession() as session:
                if options.mesos_url:
                    publisher = await self._publisher(sink, "mesos", MESOS_TABLES)
                    observer = MesosObserver(
                        publisher,
                        [master_of(m) for m in options.masters],
                        recovery_grace=options.recovery_grace,
                        recovery_timeout=options.recovery_timeout,
                    )
                    self.loops.append(
                        MesosLoop(
                            MesosClient(session, options.mesos_url, options.max_document_bytes),
                            observer,
                            poll_only=options.mesos_poll_only,
                            poll_interval=options.mesos_poll_interval,
                            marks=self._marks(sink, offsets, "mesos", MESOS_TABLES),
                            max_record_bytes=options.max_record_bytes,
                        )
                    )
                if options.marathon_url:
                    publisher = await self._publisher(sink, "marathon", MARATHON_TABLES)
                    observer = MarathonObserver(publisher)
                    self.loops.append(
                        MarathonLoop(
                            MarathonClient(session, options.marathon_url, options.max_document_bytes),
                            observer,
                            resync_interval=options.marathon_resync_interval,
                            silence_timeout=options.marathon_silence_timeout,
                            marks=self._marks(sink, offsets, "marathon", MARATHON_TABLES),
                            max_line_bytes=options.max_sse_line_bytes,
                            max_event_bytes=options.max_sse_event_bytes,
                        )
                    )
                for loop in self.loops:
                    gap = previous_gap(previous_marks, loop.observer.publisher.source)
                    if gap is not None:
                        loop.observer.expect_gap(gap)
                if started:
                    started.set()
                heartbeats = [asyncio.create_task(m.heartbeat(stop)) for m in self.marks]
                try:
                    await _run_until_stopped([_supervised(loop, stop) for loop in self.loops], stop)
                finally:
                    for task in heartbeats:
                        task.cancel()
                    for marks in self.marks:
                        marks.beat()
        finally:
            await asyncio.to_thread(sink.close)
            await asyncio.to_thread(offsets.close)
            log.info(
                "producer stopped: %d changes published, %d inputs rejected",
                sum(p.published for p in self.publishers),
                sum(p.rejected for p in self.publishers),
            )

    async def _publisher(self, sink: KafkaSink, source: str, aliases: tuple[str, ...]) -> Publisher:
        options = self.options
        actual = await _actual(options.bootstrap, options.catalog, aliases)
        publisher = Publisher(sink, source, actual, options.catalog, max_value_bytes=options.max_value_bytes)
        self.publishers.append(publisher)
        return publisher

    def _marks(self, sink: KafkaSink, offsets: EndOffsets, source: str, aliases: tuple[str, ...]) -> ProducerMarks:
        marks = ProducerMarks(sink, offsets, self.options.catalog, source, aliases, self.instance, self.started_at)
        self.marks.append(marks)
        return marks


async def _supervised(loop: MesosLoop | MarathonLoop, stop: asyncio.Event) -> None:
    """Run one side until ``stop``; if it fails on something unforeseen, log it and start it again.

    The loops handle every failure of their input themselves; this is the last line that keeps
    a bug or an unexpected input on one side from stopping the other. A fatal Kafka error is
    not retried: the idempotent producer cannot go on, so the process has to restart.
    """
    backoff = Backoff(first=1.0, limit=30.0)
    source = loop.observer.publisher.source
    set_log_context(source=source)  # this side's own task: its lines say mesos or marathon
    while not stop.is_set():
        try:
            await loop.run(stop)
            return
        except KafkaException:
            raise
        except Exception:  # noqa: BLE001 - see the docstring
            log.exception("the %s side of the producer failed; restarting it", source)
            loop.connected.clear()
            if loop.marks:
                loop.marks.lost()
            await sleep_or_stop(stop, backoff.next_delay())


async def _run_until_stopped(coroutines: list, stop: asyncio.Event) -> None:
    """Run the loops until ``stop``; a loop blocked on a quiet stream is cancelled, not awaited.

    A loop that fails on its own (only a fatal Kafka error gets this far) re-raises here,
    after the others are cancelled.
    """
    tasks = [asyncio.create_task(c) for c in coroutines]
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    for task in [*tasks, stopper]:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result

