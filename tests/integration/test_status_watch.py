"""The node's status watch waits for a status topic nobody has created yet, instead of dying
(a node may start before the producer and processor create the topics)."""

from __future__ import annotations

import asyncio
import time

import pytest

from runtime.kafka.status import StatusWatch
from runtime.kafka.topics import ensure_topics
from runtime.kafka.writer import KafkaSink
from schemas import codec
from schemas.headers import Observation
from schemas.status import PROCESSOR_KEY, Mark
from tests.integration.pipeline import new_catalog

pytestmark = pytest.mark.kafka


async def test_the_status_watch_waits_for_the_topic_and_then_reads_the_ready_mark(kafka_bootstrap):
    catalog = new_catalog()
    watch = StatusWatch(kafka_bootstrap, catalog.topic("status").name)
    stop = asyncio.Event()
    watching = asyncio.create_task(watch.run(stop))
    await asyncio.sleep(12)  # longer than one 10 s wait for the topic's metadata
    assert not watching.done() and watch.processor_ready is False

    def create_and_mark() -> None:
        ensure_topics(kafka_bootstrap, catalog)
        topic, now = catalog.topic("status"), time.time()
        sink = KafkaSink(kafka_bootstrap)
        mark = Mark("processor", "test:1:ab", now, now, True, synced_at=now, ready=True)
        sink.publish(topic.name, PROCESSOR_KEY, codec.encode(mark), Observation.now().headers(topic.schema_id))
        sink.close()

    await asyncio.to_thread(create_and_mark)
    deadline = time.monotonic() + 30
    while not watch.processor_ready:
        assert time.monotonic() < deadline, "the ready mark never reached the watch"
        assert not watching.done(), watching.exception() if watching.done() else None
        await asyncio.sleep(0.1)
    assert watch.marks[PROCESSOR_KEY].instance == "test:1:ab"
    stop.set()
    await asyncio.wait_for(watching, 10)
