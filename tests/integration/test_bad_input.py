"""Bad input never reaches the tables, never stops a producer, and leaves a rejection record."""

import asyncio

import orjson
import pytest

from tests.integration.pipeline import Pipeline, changes_of
from tests.scenarios.mesos_fixtures import FIXTURES

pytestmark = pytest.mark.kafka

OPERATOR_API = FIXTURES / "mesos-operator-api" / "operator-api.json"
STATE = FIXTURES / "mesos-state" / "state2.json"


def frame(payload: bytes) -> bytes:
    return str(len(payload)).encode() + b"\n" + payload


async def rejections(pipeline, count):
    values = await pipeline.eventually(lambda: pipeline.values("rejections"), lambda v: len(v) >= count)
    return [(v["source"], v["what"], v["why"]) for v in values]


async def launch(pipeline, app_id, instances=1):
    reply = await pipeline.control("POST", "/sim/apps", {"id": app_id, "instances": instances, "portDefinitions": [{"port": 0}]})
    return [c["task_id"] for c in changes_of(reply, state="TASK_RUNNING")]


async def test_mesos_stream_bad_records_are_rejected_and_the_stream_goes_on(kafka_bootstrap):
    async with Pipeline(kafka_bootstrap, mesos_state=OPERATOR_API, marathon_url=None) as pipeline:
        bad_labels_task = {
            "task_id": {"value": "odd.1"}, "name": "odd", "state": "TASK_RUNNING",
            "framework_id": {"value": "30257977-0153-499d-a5b0-35afd842ef4d-0001"},
            "agent_id": {"value": "30257977-0153-499d-a5b0-35afd842ef4d-S0"},
            "labels": {"labels": [{"key": "team", "value": "edge"}, {"key": 42}]},
        }
        injected = (
            frame(b'{"type": "TASK_ADDED", "task_added": ')
            + frame(b'{"type": "TASK_TELEPORTED"}')
            + frame(orjson.dumps({"type": "TASK_ADDED", "task_added": {"task": bad_labels_task}}))
        )
        await pipeline.control("POST", "/sim/faults/mesos-stream", raw=injected)
        (task_id,) = await launch(pipeline, "/after-the-garbage")

        tasks = await pipeline.eventually(lambda: pipeline.tasks_by_id(), lambda t: task_id in t and "odd.1" in t)
        assert tasks["odd.1"]["labels"] == {"team": "edge"}
        found = await rejections(pipeline, 3)
        assert found[0][:2] == ("mesos", "recordio-record") and found[0][2].startswith("malformed JSON")
        assert found[1:] == [
            ("mesos", "event", "unknown event type 'TASK_TELEPORTED'"),
            ("mesos", "labels", "task odd.1: label without a string key and value"),
        ]


async def test_truncated_frame_is_rejected_and_the_resync_repairs_what_it_swallowed(kafka_bootstrap):
    async with Pipeline(kafka_bootstrap, mesos_state=OPERATOR_API, marathon_url=None) as pipeline:
        # A frame that claims 99,999 bytes swallows the real records after it ...
        await pipeline.control("POST", "/sim/faults/mesos-stream", raw=b'99999\n{"type":"TASK_ADDED"')
        swallowed = await launch(pipeline, "/swallowed", instances=2)
        await asyncio.sleep(0.5)
        tasks = await pipeline.tasks_by_id()
        assert [t for t in swallowed if t in tasks] == []
        # ... until the stream ends inside it: rejected, reconnected, and the snapshot repairs.
        await pipeline.control("POST", "/sim/faults/drop-streams", {"side": "mesos", "mode": "eof"})
        await pipeline.eventually(lambda: pipeline.tasks_by_id(), lambda t: all(i in t for i in swallowed))
        (source, what, why), = await rejections(pipeline, 1)
        assert (source, what) == ("mesos", "recordio-frame")
        assert why.startswith("truncated frame: stream ended after ") and why.endswith(" of 99999 bytes")


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"// exported from the Mesos UI\n" + STATE.read_bytes(), "starts with // comment lines (a browser export), not a Mesos master reply"),
        (orjson.dumps({"slaves": [], "frameworks": []}), "the state names no leader (a master without leadership, or an agent state)"),
        (b'{"leader": "master@10.0.0.1:5050", "slaves": [', None),
    ],
    ids=["browser-export", "no-leader", "malformed-json"],
)
async def test_unusable_master_state_is_rejected_and_the_tables_kept(kafka_bootstrap, body, why):
    async with Pipeline(kafka_bootstrap, mesos_state=STATE, marathon_url=None, mesos_poll_only=True, mesos_poll_interval=0.2) as pipeline:
        before = await pipeline.eventually(lambda: pipeline.tasks_by_id(), lambda t: len(t) == 1)
        await pipeline.control("PUT", "/sim/faults/mesos-state", raw=body)
        (source, what, reason), *_ = await rejections(pipeline, 1)
        assert (source, what) == ("mesos", "master-state")
        assert reason == why if why else reason.startswith("malformed JSON")
        assert await pipeline.tasks_by_id() == before
        await pipeline.control("DELETE", "/sim/faults/mesos-state")
        (task_id,) = await launch(pipeline, "/after-the-fault")
        await pipeline.eventually(lambda: pipeline.tasks_by_id(), lambda t: task_id in t)


async def test_marathon_bad_events_and_bad_apps_are_rejected(kafka_bootstrap):
    async with Pipeline(kafka_bootstrap, mesos_state=OPERATOR_API, mesos_url=None, marathon_resync_interval=0.5) as pipeline:
        injected = b"event: status_update_event\ndata: {\"taskId\": \n\nevent: framework_message_event\ndata: {}\n\n"
        await pipeline.control("POST", "/sim/faults/marathon-stream", raw=injected)
        apps = {"apps": [{"id": "/good", "instances": 1, "labels": {"HAPROXY_GROUP": "external"}},
                         {"id": "/odd", "instances": 1, "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_PORT": 80}}]}
        await pipeline.control("PUT", "/sim/faults/marathon-apps", raw=orjson.dumps(apps))
        await pipeline.eventually(lambda: pipeline.table("apps"), lambda t: set(t) == {"/good", "/odd"})
        assert (await pipeline.table("apps"))["/odd"]["labels"] == {"HAPROXY_GROUP": "external"}
        found = await rejections(pipeline, 3)
        assert found[0][:2] == ("marathon", "sse-event") and found[0][2].startswith("malformed JSON in status_update_event")
        assert found[1] == ("marathon", "sse-event", "unknown event type 'framework_message_event'")
        assert ("marathon", "labels", "app /odd: label 'HAPROXY_0_PORT' has a non-string value") in found

        await pipeline.control("PUT", "/sim/faults/marathon-apps", raw=b"<html>502 Bad Gateway</html>")
        values = await pipeline.eventually(
            lambda: pipeline.values("rejections"), lambda v: any(r["what"] == "apps" for r in v)
        )
        bad_gateway = [r for r in values if r["what"] == "apps"][0]
        assert bad_gateway["why"].startswith("malformed JSON") and bad_gateway["excerpt"] == "<html>502 Bad Gateway</html>"
        assert set(await pipeline.table("apps")) == {"/good", "/odd"}


# -- inputs that crashed the producer: now one entity is rejected and everything else goes on --

HUGE_LABELS = {f"L{i}": "v" * 1000 for i in range(1700)}  # 1.7 MB, over Kafka's 1 MiB record


def why_of(found, source, what):
    return [why for s, w, why in found if (s, w) == (source, what)]


async def test_megabytes_of_labels_and_a_string_container_reject_one_entity_each_and_both_sides_go_on(kafka_bootstrap):
    async with Pipeline(kafka_bootstrap, mesos_state=OPERATOR_API, marathon_resync_interval=1.0) as pipeline:
        huge = await pipeline.control("POST", "/sim/apps", {"id": "/huge", "instances": 1, "labels": HUGE_LABELS,
                                                           "portDefinitions": [{"port": 0}]})
        (huge_task,) = [c["task_id"] for c in changes_of(huge, state="TASK_RUNNING")]
        (fine_task,) = await launch(pipeline, "/fine")

        await pipeline.eventually(lambda: pipeline.tasks_by_id(), lambda t: fine_task in t)
        app_tasks = await pipeline.eventually(lambda: pipeline.table("app-tasks"), lambda t: {huge_task, fine_task} <= set(t))
        assert app_tasks[huge_task]["app_id"] == "/huge"  # the task itself is small: only the app is too big
        assert huge_task not in await pipeline.tasks_by_id()
        assert "/huge" not in await pipeline.table("apps") and "/fine" in await pipeline.table("apps")
        values = await pipeline.eventually(
            lambda: pipeline.values("rejections"),
            lambda v: {("mesos", "task"), ("marathon", "app")} <= {(r["source"], r["what"]) for r in v})
        found = [(r["source"], r["what"], r["why"]) for r in values]
        (task_why, *_) = why_of(found, "mesos", "task")
        (huge_key,) = {f"{c['framework_id']}/{c['task_id']}" for c in changes_of(huge, state="TASK_RUNNING")}
        assert task_why.startswith(f"task {huge_key}: its record would be 1,7") and task_why.endswith(" bytes, over the 921,600-byte limit")
        (app_why, *_) = why_of(found, "marathon", "app")
        assert app_why.startswith("app /huge: its record would be 1,7")

        # Marathon then lists an app whose container is a string, next to the good ones.
        async with pipeline.http.get(pipeline.simulator.marathon_url + "/v2/apps?embed=apps.tasks") as response:
            reply = orjson.loads(await response.read())
        reply["apps"].append({"id": "/odd-container", "instances": 1, "container": "docker"})
        await pipeline.control("PUT", "/sim/faults/marathon-apps", raw=orjson.dumps(reply))
        await pipeline.eventually(
            lambda: pipeline.values("rejections"),
            lambda v: any(r["why"] == "app /odd-container: container must be an object, got str" for r in v))
        assert "/fine" in await pipeline.table("apps") and "/odd-container" not in await pipeline.table("apps")
        await pipeline.control("DELETE", "/sim/faults/marathon-apps")

        (after,) = await launch(pipeline, "/after-the-crashers")  # both sides are still up
        await pipeline.eventually(lambda: pipeline.tasks_by_id(), lambda t: after in t)
        await pipeline.eventually(lambda: pipeline.table("app-tasks"), lambda t: after in t)


async def test_a_wrongly_typed_task_in_subscribed_rejects_that_task_only_and_a_negative_heartbeat_is_clamped(kafka_bootstrap):
    async with Pipeline(kafka_bootstrap, mesos_state=OPERATOR_API, marathon_url=None) as pipeline:
        (running,) = await launch(pipeline, "/present")
        async with pipeline.http.post(pipeline.simulator.mesos_url + "/api/v1", json={"type": "GET_STATE"}) as response:
            get_state = orjson.loads(await response.read())["get_state"]
        template = next(t for t in get_state["get_tasks"]["tasks"] if t["task_id"]["value"] == running)
        injected = orjson.loads(orjson.dumps(template))
        injected["task_id"] = {"value": "injected.1"}
        bad = orjson.loads(orjson.dumps(template))
        bad["task_id"] = {"value": "bad.1"}
        bad["discovery"] = {"visibility": "FRAMEWORK", "name": "bad", "ports": "80"}
        get_state["get_tasks"]["tasks"] += [injected, bad]
        subscribed = {"type": "SUBSCRIBED", "subscribed": {"get_state": get_state, "heartbeat_interval_seconds": -1}}
        await pipeline.control("POST", "/sim/faults/mesos-stream", raw=frame(orjson.dumps(subscribed)))

        tasks = await pipeline.eventually(lambda: pipeline.tasks_by_id(), lambda t: "injected.1" in t)
        assert running in tasks and "bad.1" not in tasks
        found = await rejections(pipeline, 2)
        assert ("mesos", "heartbeat-interval", "heartbeat_interval_seconds -1 is not a positive number; using 15s") in found
        assert ("mesos", "task", "task bad.1: discovery.ports must be an object with a ports list") in found
        (after,) = await launch(pipeline, "/after-the-snapshot")  # the same stream goes on
        await pipeline.eventually(lambda: pipeline.tasks_by_id(), lambda t: after in t)


async def test_an_sse_line_that_never_ends_is_refused_at_the_bound_and_the_stream_reopened(kafka_bootstrap):
    async with Pipeline(kafka_bootstrap, mesos_state=OPERATOR_API, mesos_url=None, max_sse_line_bytes=64 * 1024) as pipeline:
        await pipeline.control("POST", "/sim/faults/marathon-stream", raw=b"event: status_update_event\ndata: {\"x\": \"")
        for _ in range(4):
            await pipeline.control("POST", "/sim/faults/marathon-stream", raw=b"x" * 32 * 1024)
        (source, what, why), *_ = await rejections(pipeline, 1)
        assert (source, what) == ("marathon", "sse-line")
        assert why.startswith("a line grew past 65,536 bytes (") and why.endswith(") without ending")
        (task_id,) = await launch(pipeline, "/after-the-endless-line")  # reconnected and resynced
        await pipeline.eventually(lambda: pipeline.table("app-tasks"), lambda t: task_id in t)


async def test_a_recordio_frame_over_the_bound_is_refused_and_the_stream_reopened(kafka_bootstrap):
    async with Pipeline(kafka_bootstrap, mesos_state=OPERATOR_API, marathon_url=None, max_record_bytes=1024 * 1024) as pipeline:
        await pipeline.control("POST", "/sim/faults/mesos-stream", raw=b"2000000000\n{\"type\":")
        (source, what, why), *_ = await rejections(pipeline, 1)
        assert (source, what, why) == ("mesos", "recordio-frame", "a record of 2,000,000,000 bytes is over the 1,048,576-byte frame limit")
        (task_id,) = await launch(pipeline, "/after-the-big-frame")
        await pipeline.eventually(lambda: pipeline.tasks_by_id(), lambda t: task_id in t)


async def test_a_master_state_over_the_document_bound_is_refused_and_the_tables_kept(kafka_bootstrap):
    async with Pipeline(kafka_bootstrap, mesos_state=STATE, marathon_url=None, mesos_poll_only=True,
                        mesos_poll_interval=0.2, max_document_bytes=100_000) as pipeline:
        before = await pipeline.eventually(lambda: pipeline.tasks_by_id(), lambda t: len(t) == 1)
        await pipeline.control("PUT", "/sim/faults/mesos-state", raw=b" " * 150_000)
        (source, what, why), *_ = await rejections(pipeline, 1)
        assert (source, what) == ("mesos", "master-state")
        assert why == "the reply declares 150,000 bytes, over the 100,000-byte document limit"
        assert await pipeline.tasks_by_id() == before
        await pipeline.control("DELETE", "/sim/faults/mesos-state")
        (task_id,) = await launch(pipeline, "/after-the-big-state")
        await pipeline.eventually(lambda: pipeline.tasks_by_id(), lambda t: task_id in t)
