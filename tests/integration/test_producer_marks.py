"""Producer readiness marks and history gaps, against a real Kafka.

Marks: each side writes ``producer/<source>`` in the status topic, in sync with the end
offsets of its tables once its start-up sync is delivered; out of sync as soon as its stream
is lost, and in sync again after the resync; rewritten on a heartbeat.
Gaps: tasks launched and ended while the producer was down get their events rebuilt from the
master's completed tasks, after one ``history_gap`` event that spans the outage.
"""

import asyncio
import time

import msgspec
import pytest

from tests.integration.pipeline import Pipeline, changes_of, task_id_of
from tests.scenarios.mesos_fixtures import FIXTURES
from schemas.status import HEARTBEAT_S, Mark

pytestmark = pytest.mark.kafka

OPERATOR_API = FIXTURES / "mesos-operator-api" / "operator-api.json"
MESOS_TABLES = ("cluster", "agents", "frameworks", "tasks")
MARATHON_TABLES = ("apps", "app-tasks")


async def marks_log(pipeline: Pipeline, key: str) -> list[Mark]:
    return [msgspec.json.decode(r.value, type=Mark) for r in await pipeline.log("status") if r.key == key and r.value]


async def end_offsets(pipeline: Pipeline, alias: str) -> dict[int, int]:
    ends = {p: 0 for p in range(pipeline.catalog.topic(alias).partitions)}
    for record in await pipeline.log(alias):
        ends[record.partition] = max(ends[record.partition], record.offset + 1)
    return ends


async def latest_mark(pipeline: Pipeline, key: str, check=lambda mark: True, timeout: float = 15.0) -> Mark:
    marks = await pipeline.eventually(lambda: marks_log(pipeline, key), lambda m: bool(m) and check(m[-1]), timeout)
    return marks[-1]


async def test_marks_carry_the_table_end_offsets_flip_on_a_lost_stream_and_keep_beating(kafka_bootstrap):
    async with Pipeline(kafka_bootstrap, mesos_state=OPERATOR_API) as pipeline:
        started = time.time()
        for source, tables in (("mesos", MESOS_TABLES), ("marathon", MARATHON_TABLES)):
            mark = await latest_mark(pipeline, f"producer/{source}", lambda m: m.in_sync)
            assert mark.role == "producer" and mark.synced_at is not None
            host, pid, _ = mark.instance.split(":")
            assert int(pid) > 0 and host
            assert mark.started_at == pipeline.producer.producers.started_at
            assert mark.positions == {alias: await end_offsets(pipeline, alias) for alias in tables}
        assert sum((await end_offsets(pipeline, "tasks")).values()) >= 12

        first = await latest_mark(pipeline, "producer/mesos", lambda m: m.in_sync)
        (task_id,) = [c["task_id"] for c in changes_of(
            await pipeline.control("POST", "/sim/apps", {"id": "/marked", "instances": 1, "portDefinitions": [{"port": 0}]}),
            state="TASK_RUNNING")]
        await pipeline.eventually(lambda: pipeline.tasks_by_id(), lambda t: task_id in t)
        await pipeline.control("POST", "/sim/faults/drop-streams", {"side": "mesos", "mode": "eof"})

        resynced = await latest_mark(pipeline, "producer/mesos", lambda m: m.in_sync and m.synced_at > first.synced_at)
        history = await marks_log(pipeline, "producer/mesos")
        lost = [m for m in history if not m.in_sync and m.synced_at == first.synced_at]
        assert lost and lost[0].positions == first.positions  # out of sync, the last sync kept
        assert history.index(lost[0]) < history.index(resynced)
        assert resynced.positions["tasks"] == await end_offsets(pipeline, "tasks")
        assert sum(resynced.positions["tasks"].values()) > sum(first.positions["tasks"].values())

        quiet_from = time.time()
        await asyncio.sleep(HEARTBEAT_S + 1)  # nothing changes meanwhile, yet the mark is rewritten
        beat = await latest_mark(pipeline, "producer/mesos")
        assert quiet_from <= beat.heartbeat_at <= time.time()
        assert (beat.in_sync, beat.synced_at, beat.positions) == (True, resynced.synced_at, resynced.positions)
        assert beat.heartbeat_at > started


async def test_tasks_launched_and_ended_while_the_producer_was_down_are_rebuilt_after_a_gap_event(kafka_bootstrap):
    async with Pipeline(kafka_bootstrap, mesos_state=OPERATOR_API, marathon_url=None) as pipeline:
        (seen,) = [c["task_id"] for c in changes_of(
            await pipeline.control("POST", "/sim/apps", {"id": "/seen", "instances": 1, "portDefinitions": [{"port": 0}]}),
            state="TASK_RUNNING")]
        await pipeline.eventually(lambda: pipeline.tasks_by_id(), lambda t: seen in t)
        await pipeline.stop_producer()
        last_mark = (await marks_log(pipeline, "producer/mesos"))[-1]

        down_at = time.time()
        unseen = [c["task_id"] for c in changes_of(
            await pipeline.control("POST", "/sim/apps", {"id": "/unseen", "instances": 2, "portDefinitions": [{"port": 0}]}),
            state="TASK_RUNNING")]
        await pipeline.control("DELETE", f"/sim/tasks/{unseen[0]}")
        await pipeline.control("POST", f"/sim/tasks/{unseen[1]}/fail")
        await pipeline.control("DELETE", f"/sim/tasks/{seen}")
        up_at = time.time()
        await pipeline.start_producer()

        events = await pipeline.eventually(
            lambda: pipeline.values("events"), lambda v: any(e["kind"] == "history_gap" for e in v))
        (gap,) = [e for e in events if e["kind"] == "history_gap"]
        assert (gap["entity"], gap["id"], gap["source"]) == ("cluster", "mesos", "mesos")
        assert gap["fields"]["from"] == last_mark.heartbeat_at
        assert gap["fields"]["cause"] == "producer restart"
        assert up_at <= gap["fields"]["to"] == gap["observed_at"] <= time.time()

        rebuilt = [e for e in events if e["fields"].get("reconstructed") is True]
        assert gap["fields"]["reconstructed"] == len(rebuilt)

        def kinds(task_id):
            return [e["kind"] for e in rebuilt if task_id_of(e) == task_id]

        assert kinds(unseen[0]) == ["task_running", "task_killing", "task_killed"]
        assert kinds(unseen[1]) == ["task_running", "task_failed"]
        assert kinds(seen) == ["task_killing", "task_killed"]  # its launch was published before the outage
        assert all(down_at <= e["observed_at"] <= up_at for e in rebuilt)
        assert all(e["fields"]["name"] in ("unseen", "seen") for e in rebuilt)
        tasks = await pipeline.tasks_by_id()
        assert seen not in tasks and not set(unseen) & set(tasks)
