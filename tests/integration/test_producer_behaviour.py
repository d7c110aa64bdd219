"""The producers against a real Kafka: restarts, kills, history, failover of the stream."""

import asyncio

import pytest

from tests.integration.pipeline import Pipeline, changes_of, task_id_of
from tests.scenarios.mesos_fixtures import FIXTURES

pytestmark = pytest.mark.kafka

OPERATOR_API = FIXTURES / "mesos-operator-api" / "operator-api.json"
ZDD_APPS = FIXTURES / "marathon-apps" / "zdd_apps.json"


async def test_restart_with_nothing_changed_publishes_zero_records(kafka_bootstrap):
    async with Pipeline(kafka_bootstrap, mesos_state=OPERATOR_API) as pipeline:
        await pipeline.eventually(lambda: pipeline.tasks_by_id(), lambda t: len(t) == 12)
        await pipeline.eventually(lambda: pipeline.table("app-tasks"), lambda t: len(t) > 0)
        await pipeline.stop_producer()  # flushes everything in flight
        before = await pipeline.end_offsets()
        events_before = await pipeline.values("events")
        assert before["tasks"] >= 12 and before["events"] > 0

        await pipeline.start_producer()  # returns once both streams are connected and resynced
        await pipeline.stop_producer()
        after = await pipeline.end_offsets()
        tables = ("agents", "frameworks", "tasks", "cluster", "apps", "app-tasks", "rejections")
        assert {t: after[t] for t in tables} == {t: before[t] for t in tables}
        # the history only says that nobody watched while the producer was down (status holds
        # the readiness marks, rewritten on every sync and heartbeat)
        new_events = [e for e in await pipeline.values("events") if e not in events_before]
        assert sorted((e["kind"], e["source"], e["fields"]["reconstructed"]) for e in new_events) == [
            ("history_gap", "marathon", 0), ("history_gap", "mesos", 0)]


async def test_killed_task_history_and_final_state(kafka_bootstrap):
    async with Pipeline(kafka_bootstrap, mesos_state=OPERATOR_API) as pipeline:
        launched = await pipeline.control("POST", "/sim/apps", {"id": "/shop/web", "instances": 2, "portDefinitions": [{"port": 0}]})
        running = [c["task_id"] for c in changes_of(launched, state="TASK_RUNNING")]
        assert len(running) == 2
        await pipeline.eventually(lambda: pipeline.tasks_by_id(), lambda t: all(i in t for i in running))

        killed, survivor = running
        reply = await pipeline.control("DELETE", f"/sim/tasks/{killed}")
        assert [c["state"] for c in changes_of(reply)] == ["TASK_KILLING", "TASK_KILLED"]

        def history(values):
            return [(v["kind"], v["fields"].get("state")) for v in values if task_id_of(v) == killed and v["source"] == "mesos"]

        events = await pipeline.eventually(lambda: pipeline.values("events"), lambda v: ("task_killed", "TASK_KILLED") in history(v))
        assert history(events) == [
            ("task_staging", "TASK_STAGING"),
            ("task_running", "TASK_RUNNING"),
            ("task_killing", "TASK_KILLING"),
            ("task_killed", "TASK_KILLED"),
        ]
        kill_event = [v for v in events if task_id_of(v) == killed and v["kind"] == "task_killed"][0]
        assert kill_event["fields"]["name"] == "web.shop"

        tasks = await pipeline.tasks_by_id()
        assert killed not in tasks
        assert tasks[survivor]["state"] == "TASK_RUNNING"
        assert tasks[survivor]["name"] == "web.shop"
        (killed_key,) = {f"{c['framework_id']}/{c['task_id']}" for c in changes_of(reply)}
        last = [r for r in await pipeline.log("tasks") if r.key == killed_key][-1]
        assert last.value is None  # a tombstone, and it still carries the headers
        assert dict(last.headers)["wf-schema"] == b"wayfinder.mesos.Task/1"

        app_tasks = await pipeline.eventually(lambda: pipeline.table("app-tasks"), lambda t: killed not in t)
        assert app_tasks[survivor]["app_id"] == "/shop/web"
        assert (await pipeline.table("apps"))["/shop/web"]["instances"] == 2


async def test_health_change_reaches_both_tables(kafka_bootstrap):
    async with Pipeline(kafka_bootstrap, mesos_state=OPERATOR_API) as pipeline:
        app = {"id": "/api", "instances": 1, "portDefinitions": [{"port": 0}], "healthChecks": [{"protocol": "HTTP", "path": "/"}]}
        launched = await pipeline.control("POST", "/sim/apps", app)
        (task_id,) = [c["task_id"] for c in changes_of(launched, state="TASK_RUNNING")]
        await pipeline.eventually(lambda: pipeline.tasks_by_id(), lambda t: t.get(task_id, {}).get("healthy") is True)
        await pipeline.control("POST", f"/sim/tasks/{task_id}/health", {"healthy": False})
        await pipeline.eventually(lambda: pipeline.tasks_by_id(), lambda t: t[task_id]["healthy"] is False)
        tasks = await pipeline.eventually(
            lambda: pipeline.table("app-tasks"), lambda t: t[task_id]["health_check_results"] == [{"alive": False, "consecutive_failures": 0}]
        )
        assert tasks[task_id]["state"] == "TASK_RUNNING"
        kinds = [(v["source"], v["kind"]) for v in await pipeline.values("events") if task_id_of(v) == task_id]
        assert ("mesos", "task_health_changed") in kinds and ("marathon", "task_health_changed") in kinds


async def test_marathon_only_cluster(kafka_bootstrap):
    async with Pipeline(kafka_bootstrap, marathon_apps=ZDD_APPS, mesos_url=None) as pipeline:
        apps = await pipeline.eventually(lambda: pipeline.table("apps"), lambda t: len(t) == 2)
        assert apps["/nginx-blue"]["labels"]["HAPROXY_DEPLOYMENT_COLOUR"] == "blue"
        tasks = await pipeline.table("app-tasks")
        assert tasks["nginx-green.1883a887-c931-11e5-9836-026ee08d9f6f"]["ip_addresses"] == ["172.17.1.72"]


async def test_silent_streams_are_detected_and_repaired(kafka_bootstrap):
    async with Pipeline(kafka_bootstrap, mesos_state=OPERATOR_API, heartbeat=0.3, marathon_silence_timeout=1.0) as pipeline:
        await pipeline.control("POST", "/sim/faults/silence", {"mesos": True, "marathon": True})
        launched = await pipeline.control("POST", "/sim/apps", {"id": "/quiet", "instances": 1, "portDefinitions": [{"port": 0}]})
        (task_id,) = [c["task_id"] for c in changes_of(launched, state="TASK_RUNNING")]
        # Nothing arrives on the silenced streams. Three missed heartbeats (0.9 s) and a second
        # without a keep-alive mark them dead; reconnecting resyncs and repairs both tables.
        await asyncio.sleep(2.5)
        await pipeline.control("POST", "/sim/faults/silence", {"mesos": False, "marathon": False})
        await pipeline.eventually(lambda: pipeline.tasks_by_id(), lambda t: t.get(task_id, {}).get("state") == "TASK_RUNNING", timeout=20)
        await pipeline.eventually(lambda: pipeline.table("app-tasks"), lambda t: task_id in t, timeout=20)


async def test_follows_the_leader_through_a_redirect(kafka_bootstrap):
    from simulator.server import Simulator, load_model

    async with Pipeline(kafka_bootstrap, mesos_state=OPERATOR_API, marathon_url=None) as pipeline:
        standby = Simulator(load_model(OPERATOR_API), leader_url=pipeline.simulator.mesos_url)
        await standby.start()
        try:
            await pipeline.stop_producer()
            await pipeline.start_producer(mesos_url=standby.mesos_url, masters=["127.0.0.1:5050", "127.0.0.2:5050"])
            # The first producer subscribed to the leader directly; this one went through the
            # standby's 307 and records every master it was given.
            cluster = await pipeline.eventually(
                lambda: pipeline.table("cluster"), lambda t: len(t["cluster"]["masters"]) == 2
            )
            leader_port = int(pipeline.simulator.mesos_url.rsplit(":", 1)[1])
            assert cluster["cluster"]["leader"] == {"hostname": "127.0.0.1", "ip": "127.0.0.1", "port": leader_port}
            assert [m["hostname"] for m in cluster["cluster"]["masters"]] == ["127.0.0.1", "127.0.0.2"]
        finally:
            await pipeline.stop_producer()
            await standby.stop()
