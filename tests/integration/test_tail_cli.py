"""`wayfinder tail`, the way a user subscribes to task launches, as a real subprocess."""

import asyncio
import os
import sys
import time
from pathlib import Path

import orjson
import pytest

from tests.integration.pipeline import Pipeline, changes_of
from tests.scenarios.mesos_fixtures import FIXTURES

pytestmark = pytest.mark.kafka

WAYFINDER = str(Path(sys.executable).with_name("wayfinder"))


async def start_tail(pipeline: Pipeline, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        WAYFINDER, "--log-level", "warning", "tail", *args,
        "--bootstrap", pipeline.bootstrap, "--namespace", pipeline.catalog.namespace,
        stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


async def test_tail_shows_a_launch_within_a_second_of_the_post(kafka_bootstrap):
    async with Pipeline(kafka_bootstrap, mesos_state=FIXTURES / "mesos-operator-api" / "operator-api.json") as pipeline:
        tail = await start_tail(pipeline, "events", "--json", "--filter", "kind=task_running",
                                "--filter", "fields.name=probe", "--max", "1", "--timeout", "30")
        await asyncio.sleep(2.0)  # the subprocess starts and assigns its partitions
        reply = await pipeline.control("POST", "/sim/apps", {"id": "/probe", "instances": 1, "portDefinitions": [{"port": 0}]})
        (running,) = changes_of(reply, state="TASK_RUNNING")
        line = await asyncio.wait_for(tail.stdout.readline(), 10)
        shown_at = time.time()
        assert await asyncio.wait_for(tail.wait(), 10) == 0

        record = orjson.loads(line)
        assert record["topic"] == f"{pipeline.catalog.namespace}.events"
        assert record["key"] == f"{running['framework_id']}/{running['task_id']}"
        assert record["value"]["fields"]["task_id"] == running["task_id"]
        assert record["value"]["kind"] == "task_running"
        assert record["value"]["fields"]["state"] == "TASK_RUNNING"
        assert set(record["headers"]) == {"wf-schema", "wf-trace", "wf-observed-ns"}
        assert {"partition", "offset", "timestamp"} <= set(record)
        assert shown_at - running["at"] < 1.0


async def test_tail_human_lines_from_the_beginning(kafka_bootstrap):
    async with Pipeline(kafka_bootstrap, mesos_state=FIXTURES / "mesos-operator-api" / "pod-tasks.json", marathon_url=None) as pipeline:
        await pipeline.eventually(lambda: pipeline.values("events"), lambda v: len(v) >= 3)
        tail = await start_tail(pipeline, "agents", "--from-beginning", "--max", "1", "--timeout", "20")
        out, _ = await asyncio.wait_for(tail.communicate(), 30)
        (line,) = out.decode().splitlines()
        assert " agents " in line and '"hostname":"172.17.0.' in line
