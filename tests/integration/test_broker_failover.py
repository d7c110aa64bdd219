"""Three brokers (replication 3, min.insync.replicas 2): one broker dies mid-stream, no record is lost."""

import asyncio

import pytest

from tests.integration.pipeline import Pipeline, changes_of, task_id_of
from tests.scenarios.mesos_fixtures import FIXTURES

pytestmark = pytest.mark.kafka

ROUNDS = 8
KILL_AFTER_ROUND = 3


async def test_a_broker_killed_mid_stream_loses_no_record(kafka_three):
    async with Pipeline(kafka_three.bootstrap, mesos_state=FIXTURES / "mesos-operator-api" / "operator-api.json") as pipeline:
        launched: list[str] = []
        try:
            for round_number in range(ROUNDS):
                if round_number == KILL_AFTER_ROUND:
                    kafka_three.kill(2)
                reply = await pipeline.control("POST", "/sim/apps", {"id": f"/burst/app{round_number}", "instances": 3, "portDefinitions": [{"port": 0}]})
                launched += [c["task_id"] for c in changes_of(reply, state="TASK_RUNNING")]
                await asyncio.sleep(0.3)

            tasks = await pipeline.eventually(lambda: pipeline.tasks_by_id(), lambda t: all(i in t for i in launched), timeout=60)
            assert all(tasks[i]["state"] == "TASK_RUNNING" for i in launched)
            events = await pipeline.values("events")
            running = {task_id_of(v) for v in events if v["kind"] == "task_running" and v["source"] == "mesos"}
            assert set(launched) <= running
            staged = [task_id_of(v) for v in events if v["kind"] == "task_staging" and task_id_of(v) in set(launched)]
            assert sorted(staged) == sorted(launched)  # each exactly once: idempotence, no duplicates
            app_tasks = await pipeline.eventually(lambda: pipeline.table("app-tasks"), lambda t: all(i in t for i in launched), timeout=60)
            assert {app_tasks[i]["app_id"] for i in launched} == {f"/burst/app{n}" for n in range(ROUNDS)}
        finally:
            kafka_three.start(2)
