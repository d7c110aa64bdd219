"""`wayfinder process`: the faust worker that derives tables from the source topics.

One faust app. Its agents are thin: they hand each record to a pure stage (today the L4
stage; DNS, HAProxy and overlay join it) and the stage publishes only what changed.

Run one processor per cluster: the L4 stage allocates named-VIP addresses, which needs a
view of every VIP, so its agent must own every partition of its sources.
"""

from __future__ import annotations

import asyncio
import io
import logging

import faust

from processors.l4lb.agent import SOURCES, L4Stage
from runtime.kafka.reader import read_table
from runtime.kafka.topics import ensure_topics
from runtime.kafka.writer import KafkaSink
from schemas.catalog import Catalog

log = logging.getLogger(__name__)


class EmbeddedWorker(faust.Worker):
    """A faust worker inside a loop we own: our SIGINT/SIGTERM handlers set the stop event, so
    the worker must not install its own (it would replace ours and never let `run` return)."""

    def install_signal_handlers(self) -> None:
        pass


class Processor:
    def __init__(self, bootstrap: str, catalog: Catalog):
        self.bootstrap = bootstrap
        self.catalog = catalog
        self.sink = KafkaSink(bootstrap, client_id="wayfinder-processor")
        self.l4lb = L4Stage(catalog, self.sink)
        self.app = faust.App(
            f"{catalog.namespace}-processor",
            broker=[f"kafka://{server}" for server in bootstrap.split(",")],
            web_enabled=False,
            store="memory://",
            # A new processor replays its sources from the start; the stages ignore what the
            # rebuild already applied.
            consumer_auto_offset_reset="earliest",
            # Topics come from the catalog (runtime.kafka.topics), never from faust's defaults.
            topic_allow_declare=False,
            topic_disable_leader=True,
        )
        sources = self.app.topic(
            *(catalog.topic(alias).name for alias in SOURCES), key_serializer="raw", value_serializer="raw"
        )

        @self.app.agent(sources, name="l4lb")
        async def l4lb(stream):
            async for event in stream.events():
                self.l4lb.on_record(event.message.topic, event.key, event.value, event.message.headers)

    def _rebuild(self) -> int:
        tables = {alias: read_table(self.bootstrap, self.catalog.topic(alias).name) for alias in SOURCES}
        return self.l4lb.rebuild(tables, read_table(self.bootstrap, self.catalog.topic("vips").name))

    async def run(self, stop: asyncio.Event, started: asyncio.Event | None = None) -> None:
        await asyncio.to_thread(ensure_topics, self.bootstrap, self.catalog)
        written = await asyncio.to_thread(self._rebuild)
        log.info("L4 stage rebuilt: %d VIPs, %d records published", len(self.l4lb.table.records), written)
        worker = EmbeddedWorker(self.app, loglevel="WARNING", quiet=True, daemon=False,
                              redirect_stdouts=False, stdout=io.StringIO())
        await worker.start()
        try:
            if started:
                started.set()
            await stop.wait()
        finally:
            await worker.stop()
            await asyncio.to_thread(self.sink.close)
