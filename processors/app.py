"""`wayfinder process`: the faust worker that derives tables from the source topics.

One faust app with one agent per stage (L4 VIPs, DNS records). Agents are thin: they hand
each record to their stage (`processors.stage.Stage`), which publishes only what changed.

Run one processor per cluster: the L4 stage allocates named-VIP addresses, which needs a
view of every VIP, so its agent must own every partition of its sources.
"""

from __future__ import annotations

import asyncio
import gc
import io
import logging

import faust

from processors.dns.agent import DnsStage
from processors.dns.config import DnsConfig
from processors.l4lb.agent import L4Stage
from processors.stage import Stage
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
    def __init__(self, bootstrap: str, catalog: Catalog, dns: DnsConfig | None = None):
        self.bootstrap = bootstrap
        self.catalog = catalog
        self.sink = KafkaSink(bootstrap, client_id="wayfinder-processor")
        self.stages: list[Stage] = [L4Stage(catalog, self.sink), DnsStage(catalog, self.sink, dns)]
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
        for stage in self.stages:
            sources = self.app.topic(*stage.topic_names, key_serializer="raw", value_serializer="raw")
            self.app.agent(sources, name=stage.name)(_feeding(stage))

    def _rebuild(self) -> None:
        """Every stage from whole source tables, each source read once."""
        aliases = {alias for stage in self.stages for alias in stage.sources}
        tables = {alias: read_table(self.bootstrap, self.catalog.topic(alias).name) for alias in aliases}
        for stage in self.stages:
            published = read_table(self.bootstrap, self.catalog.topic(stage.output).name)
            written = stage.rebuild(tables, published)
            log.info("%s stage rebuilt: %d records, %d published", stage.name, len(stage.table.records), written)

    async def run(self, stop: asyncio.Event, started: asyncio.Event | None = None) -> None:
        await asyncio.to_thread(ensure_topics, self.bootstrap, self.catalog)
        await asyncio.to_thread(self._rebuild)
        # The rebuilt tables live as long as the processor: keep later full collections from
        # walking their millions of objects again, a pause that would land on some record.
        gc.collect()
        gc.freeze()
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


def _feeding(stage: Stage):
    async def feed(stream):
        async for event in stream.events():
            stage.on_record(event.message.topic, event.key, event.value, event.message.headers)

    feed.__name__ = f"{stage.name}_stage"
    return feed
