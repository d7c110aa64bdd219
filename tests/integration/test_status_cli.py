"""`wayfinder status` reads the status topic and shows every mark, STALE where it is too old."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import orjson
import pytest

from processors.dns.agent import DnsStage
from processors.haproxy.agent import HaproxyStage
from processors.l4lb.agent import L4Stage
from processors.readiness import outputs_waiting, producers_by_output
from runtime.kafka.topics import ensure_topics
from runtime.kafka.writer import KafkaSink
from runtime.status import status_lines
from schemas import codec
from schemas.catalog import Catalog
from schemas.headers import Observation
from schemas.status import Mark
from tests.integration.pipeline import new_catalog

pytestmark = pytest.mark.kafka

WAYFINDER = str(Path(sys.executable).with_name("wayfinder"))
NOW = time.time()


def marks_as_of(now: float) -> dict[str, Mark]:
    """A fresh producer mark and a processor mark 100 s old, as seen at `now` (the suite may
    run this test minutes after it imported the module)."""
    return {
        "producer/mesos": Mark("producer", "host-a/101/x1", now - 600, now - 1, True, synced_at=1_800_000_000.0),
        "processor": Mark("processor", "host-b/202/y2", now - 600, now - 100, True, synced_at=1_800_000_010.0,
                          ready=True, lag=12, epoch=3),
    }


MARKS = marks_as_of(NOW)


async def wayfinder(*args: str) -> str:
    process = await asyncio.create_subprocess_exec(WAYFINDER, "--log-level", "warning", *args,
                                                   stdout=asyncio.subprocess.PIPE, env=os.environ.copy())
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0
    return out.decode()


async def test_status_shows_each_mark_and_stale_ones(kafka_bootstrap):
    catalog = new_catalog()
    await asyncio.to_thread(ensure_topics, kafka_bootstrap, catalog)
    topic = catalog.topic("status")
    sink = KafkaSink(kafka_bootstrap)
    for key, mark in marks_as_of(time.time()).items():
        sink.publish(topic.name, key, codec.encode(mark), Observation.now().headers(topic.schema_id))
    sink.close()
    common = ("--bootstrap", kafka_bootstrap, "--namespace", catalog.namespace)

    rows = orjson.loads(await wayfinder("status", "--json", *common))
    for row in rows:
        if row["heartbeat_age_s"] is not None:
            row["heartbeat_age_s"] = round(row["heartbeat_age_s"])
    assert [row for row in rows if row["key"] != "processor"] == [
        {"key": "producer/mesos", "role": "producer", "instance": "host-a/101/x1", "in_sync": True, "ready": None,
         "synced_at": 1_800_000_000.0, "heartbeat_age_s": rows[0]["heartbeat_age_s"], "lag": None, "stale": False,
         "ready_outputs": None, "waiting": None},
        {"key": "producer/marathon", "role": None, "instance": None, "in_sync": None, "ready": None,
         "synced_at": None, "heartbeat_age_s": None, "lag": None, "stale": False, "ready_outputs": None, "waiting": None},
    ]
    assert 0 < rows[0]["heartbeat_age_s"] < 30
    (processor,) = [row for row in rows if row["key"] == "processor"]
    assert processor["stale"] is True and processor["ready"] is True and processor["lag"] == 12
    assert 100 <= processor["heartbeat_age_s"] < 130

    lines = (await wayfinder("status", *common)).splitlines()
    assert [line.split()[:2] for line in lines] == [["producer/mesos", "in"], ["producer/marathon", "no"],
                                                    ["processor", "ready"]]
    assert lines[0].split()[3:5] == ["instance=host-a/101/x1", "synced_at=2027-01-15T08:00:00Z"]
    assert lines[2].endswith("lag=12 STALE") and "STALE" not in lines[0]
    assert lines[1] == "producer/marathon  no mark"


def test_status_lines_render_every_field():
    lines = status_lines(MARKS, NOW)
    assert lines == [
        "producer/mesos     in sync      instance=host-a/101/x1 synced_at=2027-01-15T08:00:00Z heartbeat=1.0s ago",
        "producer/marathon  no mark",
        "processor          ready        instance=host-b/202/y2 synced_at=2027-01-15T08:00:10Z heartbeat=100.0s ago "
        "lag=12 STALE",
    ]


def test_a_processor_ready_for_some_outputs_says_which_and_what_the_others_wait_for():
    catalog = Catalog("unit")
    producers = producers_by_output(catalog, {stage.output: stage.sources for stage in (L4Stage, DnsStage, HaproxyStage)})
    marks = {
        "producer/mesos": Mark("producer", "host-a/101/x1", NOW - 600, NOW - 1, True, synced_at=1_800_000_000.0,
                               positions={"tasks": {0: 4}}),
        "processor": Mark("processor", "host-b/202/y2", NOW - 600, NOW - 1, True, synced_at=1_800_000_010.0,
                          positions={"tasks": {0: 4}}, lag=0, epoch=1, ready_outputs=["dns", "vips"]),
    }
    waiting = outputs_waiting(marks, producers)
    assert waiting == {"haproxy": ["producer/marathon"]}
    assert status_lines(marks, NOW, waiting)[2] == (
        "processor          partly ready instance=host-b/202/y2 synced_at=2027-01-15T08:00:10Z heartbeat=1.0s ago "
        "lag=0 ready=dns,vips waiting=haproxy:producer/marathon")
