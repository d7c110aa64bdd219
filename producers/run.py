"""`wayfinder produce`: both producers in one process, sharing one Kafka writer.

Start-up reads what the topics hold, so the first snapshot publishes only the difference.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import aiohttp

from producers.marathon.client import MarathonClient
from producers.marathon.loop import MarathonLoop
from producers.marathon.observer import MarathonObserver
from producers.mesos.client import MesosClient
from producers.mesos.loop import MesosLoop
from producers.mesos.normalize import master_of
from producers.mesos.observer import MesosObserver
from producers.publisher import Publisher
from runtime.kafka.reader import read_table
from runtime.kafka.topics import ensure_topics
from runtime.kafka.writer import KafkaSink
from schemas.catalog import DEFAULT_CATALOG, Catalog

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


async def _actual(bootstrap: str, catalog: Catalog, aliases: tuple[str, ...]) -> dict[str, dict[str, bytes]]:
    return {alias: await asyncio.to_thread(read_table, bootstrap, catalog.topic(alias).name) for alias in aliases}


class Producers:
    """Both loops, built from options; `run` until `stop` is set, then flush."""

    def __init__(self, options: ProducerOptions):
        if not (options.mesos_url or options.marathon_url):
            raise ValueError("give --mesos, --marathon or both")
        self.options = options
        self.loops: list[MesosLoop | MarathonLoop] = []
        self.publishers: list[Publisher] = []

    async def run(self, stop: asyncio.Event, started: asyncio.Event | None = None) -> None:
        options = self.options
        await asyncio.to_thread(ensure_topics, options.bootstrap, options.catalog)
        sink = KafkaSink(options.bootstrap, client_id="wayfinder-producer")
        try:
            async with aiohttp.ClientSession() as session:
                if options.mesos_url:
                    publisher = Publisher(sink, "mesos", await _actual(options.bootstrap, options.catalog, MESOS_TABLES), options.catalog)
                    observer = MesosObserver(
                        publisher,
                        [master_of(m) for m in options.masters],
                        recovery_grace=options.recovery_grace,
                        recovery_timeout=options.recovery_timeout,
                    )
                    self.publishers.append(publisher)
                    self.loops.append(
                        MesosLoop(
                            MesosClient(session, options.mesos_url),
                            observer,
                            poll_only=options.mesos_poll_only,
                            poll_interval=options.mesos_poll_interval,
                        )
                    )
                if options.marathon_url:
                    publisher = Publisher(sink, "marathon", await _actual(options.bootstrap, options.catalog, MARATHON_TABLES), options.catalog)
                    self.publishers.append(publisher)
                    self.loops.append(
                        MarathonLoop(
                            MarathonClient(session, options.marathon_url),
                            MarathonObserver(publisher),
                            resync_interval=options.marathon_resync_interval,
                            silence_timeout=options.marathon_silence_timeout,
                        )
                    )
                if started:
                    started.set()
                await _run_until_stopped([loop.run(stop) for loop in self.loops], stop)
        finally:
            await asyncio.to_thread(sink.close)
            log.info(
                "producer stopped: %d changes published, %d inputs rejected",
                sum(p.published for p in self.publishers),
                sum(p.rejected for p in self.publishers),
            )


async def _run_until_stopped(coroutines: list, stop: asyncio.Event) -> None:
    """Run the loops until ``stop``; a loop blocked on a quiet stream is cancelled, not awaited.

    A loop that fails on its own re-raises here, after the others are cancelled.
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
