"""The /sim control API: every change stamped, reflected in both APIs and their streams."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from simulator.scenario import parse_scenario, run_scenario
from tests.simulator.test_mesos_api import AGENT_IDS, WEB


def task_ids(changes: list[dict], state: str) -> list[str]:
    return [c["task_id"] for c in changes if c.get("kind") == "task_state" and c["state"] == state]


async def marathon_task_ids(http, sim, app_id: str) -> list[str]:
    async with http.get(sim.marathon_url + "/v2/apps" + app_id) as response:
        if response.status == 404:
            return []
        return [t["id"] for t in (await response.json())["app"]["tasks"]]


async def test_post_app_reply_shape(cluster, control):
    before = time.time()
    status, reply = await control(cluster, "POST", "/sim/apps", WEB)
    assert status == 200
    changes = reply["changes"]
    assert [(c["kind"], c.get("state")) for c in changes] == [
        ("app_created", None), ("task_state", "TASK_STAGING"), ("task_state", "TASK_RUNNING"),
        ("task_state", "TASK_STAGING"), ("task_state", "TASK_RUNNING")]
    assert changes[0] == {"at": changes[0]["at"], "kind": "app_created", "app_id": "/prod/web", "instances": 2}
    running = changes[2]
    assert set(running) == {"at", "kind", "task_id", "framework_id", "app_id", "agent_id", "state"}
    assert (running["app_id"], running["agent_id"]) == ("/prod/web", AGENT_IDS[0])
    assert before <= changes[0]["at"] <= changes[-1]["at"] <= time.time()


async def test_kill_goes_killing_then_killed(cluster, http, subscribe, control):
    _, reply = await control(cluster, "POST", "/sim/apps", WEB)
    victim, survivor = task_ids(reply["changes"], "TASK_RUNNING")
    stream = await subscribe(cluster)
    await stream.event()
    status, reply = await control(cluster, "DELETE", f"/sim/tasks/{victim}")
    assert status == 200
    assert [(c["task_id"], c["state"]) for c in reply["changes"]] == [(victim, "TASK_KILLING"), (victim, "TASK_KILLED")]
    events = await stream.events(2)
    assert [(e["task_updated"]["state"], e["task_updated"]["status"]["task_id"]["value"]) for e in events] == [
        ("TASK_KILLING", victim), ("TASK_KILLED", victim)]
    assert await marathon_task_ids(http, cluster, "/prod/web") == [survivor]
    assert victim in [t["task_id"]["value"] for t in cluster.model.completed()]
    status, reply = await control(cluster, "DELETE", f"/sim/tasks/{victim}")
    assert (status, reply) == (404, {"message": f"task {victim} does not exist or is no longer active"})


async def test_scale_up_then_down_kills_the_newest(cluster, http, control):
    _, reply = await control(cluster, "POST", "/sim/apps", WEB)
    original = task_ids(reply["changes"], "TASK_RUNNING")
    status, reply = await control(cluster, "PUT", "/sim/apps/prod/web/instances/4", None)
    assert status == 200
    added = task_ids(reply["changes"], "TASK_RUNNING")
    assert len(added) == 2 and reply["changes"][0]["kind"] == "app_updated"
    assert await marathon_task_ids(http, cluster, "/prod/web") == original + added
    status, reply = await control(cluster, "PUT", "/sim/apps/prod/web/instances/1", None)
    assert task_ids(reply["changes"], "TASK_KILLED") == [added[1], added[0], original[1]]
    assert await marathon_task_ids(http, cluster, "/prod/web") == original[:1]
    assert cluster.model.apps["/prod/web"]["instances"] == 1
    assert (await control(cluster, "PUT", "/sim/apps/nope/instances/1", None))[0] == 404


async def test_changed_definition_replaces_tasks_new_before_old(cluster, control):
    _, reply = await control(cluster, "POST", "/sim/apps", WEB)
    old = task_ids(reply["changes"], "TASK_RUNNING")
    _, reply = await control(cluster, "POST", "/sim/apps", dict(WEB, mem=128))
    states = [(c["task_id"], c["state"]) for c in reply["changes"] if c["kind"] == "task_state"]
    new = task_ids(reply["changes"], "TASK_RUNNING")
    assert [s for _, s in states] == ["TASK_STAGING", "TASK_RUNNING"] * 2 + ["TASK_KILLING", "TASK_KILLED"] * 2
    assert task_ids(reply["changes"], "TASK_KILLED") == old and not set(new) & set(old)
    # Posting the same definition again changes nothing but the version.
    _, reply = await control(cluster, "POST", "/sim/apps", dict(WEB, mem=128))
    assert [c["kind"] for c in reply["changes"]] == ["app_updated"]


async def test_delete_app_kills_everything_and_terminates(cluster, http, event_bus, control):
    _, reply = await control(cluster, "POST", "/sim/apps", WEB)
    running = task_ids(reply["changes"], "TASK_RUNNING")
    bus = await event_bus(cluster, "?event_type=app_terminated_event&event_type=status_update_event")
    status, reply = await control(cluster, "DELETE", "/sim/apps/prod/web")
    assert status == 200
    assert [(c["kind"], c.get("task_id"), c.get("state")) for c in reply["changes"]] == [
        ("task_state", running[0], "TASK_KILLING"), ("task_state", running[0], "TASK_KILLED"),
        ("task_state", running[1], "TASK_KILLING"), ("task_state", running[1], "TASK_KILLED"),
        ("app_deleted", None, None)]
    kinds = [k for k, _ in await bus.events(5)]
    assert kinds == ["status_update_event"] * 4 + ["app_terminated_event"]
    async with http.get(cluster.marathon_url + "/v2/apps/prod/web") as response:
        assert response.status == 404


async def test_fail_task(cluster, control):
    _, reply = await control(cluster, "POST", "/sim/apps", dict(WEB, instances=1))
    [task_id] = task_ids(reply["changes"], "TASK_RUNNING")
    status, reply = await control(cluster, "POST", f"/sim/tasks/{task_id}/fail")
    assert status == 200 and [c["state"] for c in reply["changes"]] == ["TASK_FAILED"]
    assert cluster.model.app_tasks("/prod/web") == []


async def test_agent_add_and_remove(cluster, http, subscribe, control):
    status, reply = await control(cluster, "POST", "/sim/agents",
                                  {"hostname": "10.0.0.9", "id": "agent-nine", "port_ranges": [[31000, 31001]]})
    assert status == 200
    assert [(c["kind"], c["agent_id"], c["hostname"]) for c in reply["changes"]] == [
        ("agent_added", "agent-nine", "10.0.0.9")]
    # Round robin over the four agents puts the fourth task on the new one, on its first port.
    _, reply = await control(cluster, "POST", "/sim/apps", dict(WEB, instances=4))
    assert [c["agent_id"] for c in reply["changes"] if c.get("state") == "TASK_RUNNING"] == AGENT_IDS + ["agent-nine"]
    [on_nine] = [t for t in cluster.model.agent_tasks("agent-nine")]
    assert on_nine["resources"][-1]["ranges"] == {"range": [{"begin": 31000, "end": 31000}]}
    stream = await subscribe(cluster)
    await stream.event()
    status, reply = await control(cluster, "DELETE", "/sim/agents/agent-nine")
    assert status == 200
    # state2's Marathon is not PARTITION_AWARE, so Mesos reports TASK_LOST.
    assert [(c["kind"], c.get("task_id"), c.get("state")) for c in reply["changes"]] == [
        ("task_state", on_nine["task_id"]["value"], "TASK_LOST"), ("agent_removed", None, None)]
    events = await stream.events(2)
    assert [e["type"] for e in events] == ["TASK_UPDATED", "AGENT_REMOVED"]
    assert events[0]["task_updated"]["status"]["reason"] == "REASON_AGENT_REMOVED"
    assert events[1]["agent_removed"] == {"agent_id": {"value": "agent-nine"}}
    assert "agent-nine" not in cluster.model.agents
    assert len(await marathon_task_ids(http, cluster, "/prod/web")) == 3
    assert (await control(cluster, "DELETE", "/sim/agents/agent-nine"))[0] == 404


async def test_agent_removal_on_a_partition_aware_framework_is_task_gone(start_sim, control):
    sim = await start_sim()
    await control(sim, "POST", "/sim/agents", {"hostname": "10.0.0.1"})
    status, reply = await control(sim, "POST", "/sim/apps", {"id": "/solo", "instances": 2})
    assert status == 200 and reply["changes"][0]["kind"] == "framework_added"
    agent_id = reply["changes"][-1]["agent_id"]
    _, reply = await control(sim, "DELETE", f"/sim/agents/{agent_id}")
    assert [c.get("state") for c in reply["changes"]] == ["TASK_GONE", "TASK_GONE", None]


async def test_bad_requests(cluster, http, control):
    assert await control(cluster, "POST", "/sim/apps", {"instances": 1}) == (
        400, {"message": "app definition needs a non-empty string 'id'"})
    assert (await control(cluster, "POST", "/sim/apps", {"id": "/x", "instances": -1}))[0] == 400
    assert (await control(cluster, "POST", "/sim/tasks/nope/health", {"healthy": "yes"}))[0] == 400
    assert (await control(cluster, "POST", "/sim/tasks/nope/fail"))[0] == 404
    assert (await control(cluster, "POST", "/sim/agents", {"port_ranges": [[1, 2]]}))[0] == 400
    async with http.post(cluster.marathon_url + "/sim/apps", data=b"{oops") as response:
        assert response.status == 400 and "not valid JSON" in (await response.json())["message"]
    empty = await control(cluster, "GET", "/sim/state")
    assert empty == (200, {"agents": 3, "recovered_agents": 0, "frameworks": 2, "tasks": 1,
                           "task_states": {"TASK_RUNNING": 1}, "completed_tasks": 0, "apps": 1,
                           "marathon_tasks": 1, "streams": {"mesos": 0, "marathon": 0},
                           "silenced": {"mesos": False, "marathon": False}})


async def test_churn_at_a_small_rate(cluster, control):
    await control(cluster, "POST", "/sim/apps", dict(WEB, instances=0))
    status, started = await control(cluster, "POST", "/sim/churn", {"rate": 20, "seconds": 1, "app": "/prod/web"})
    assert status == 200 and started["running"] is True and started["operations"] == 0
    await asyncio.sleep(1.3)
    status, report = await control(cluster, "GET", f"/sim/churn/{started['id']}")
    assert (report["running"], report["operations"], report["error"]) == (False, 20, None)
    stamps = [c["at"] for c in report["changes"]]
    assert stamps == sorted(stamps) and stamps[-1] - stamps[0] >= 0.9
    states = [c["state"] for c in report["changes"] if c["kind"] == "task_state"]
    assert states.count("TASK_RUNNING") - states.count("TASK_KILLED") == cluster.model.apps["/prod/web"]["instances"]
    assert len(cluster.model.app_tasks("/prod/web")) == cluster.model.apps["/prod/web"]["instances"]
    assert {c["app_id"] for c in report["changes"]} == {"/prod/web"}
    assert (await control(cluster, "DELETE", f"/sim/churn/{started['id']}"))[1]["operations"] == 20
    assert (await control(cluster, "GET", "/sim/churn/nope"))[0] == 404
    assert (await control(cluster, "POST", "/sim/churn", {"rate": 0, "seconds": 1}))[0] == 400


async def test_scenario_file_runs_against_the_control_api(cluster):
    path = Path(__file__).resolve().parents[1] / "scenarios/sim/launch-scale-kill.jsonl"
    steps = parse_scenario(str(path), path.read_text())
    assert [(s.method, s.path) for s in steps] == [
        ("POST", "/sim/agents"), ("POST", "/sim/apps"), ("PUT", "/sim/apps/shop/web/instances/4"),
        ("GET", "/v2/apps/shop/web"), ("PUT", "/sim/apps/shop/web/instances/1"), ("GET", "/sim/state")]
    results = await asyncio.wait_for(run_scenario(cluster.marathon_url, steps), 5)
    assert [r["status"] for r in results] == [200] * 6
    app = results[3]["reply"]["app"]
    assert (len(app["tasks"]), app["tasksHealthy"]) == (4, 4)
    assert "sim-agent-9" in {t["slaveId"] for t in app["tasks"]}
    assert results[5]["reply"]["tasks"] == 2  # the fixture's sleep task and one web task


def test_malformed_scenario_names_file_and_line():
    with pytest.raises(ValueError, match="s.jsonl: line 2: 'path' must start with '/'"):
        parse_scenario("s.jsonl", '{"method": "GET", "path": "/sim/state"}\n{"method": "GET", "path": "sim"}\n')


async def test_churn_without_an_app_creates_one_and_can_be_stopped(start_sim, control):
    sim = await start_sim()
    await control(sim, "POST", "/sim/agents", {"hostname": "10.0.0.1"})
    _, started = await control(sim, "POST", "/sim/churn", {"rate": 50, "seconds": 60})
    await asyncio.sleep(0.3)
    status, stopped = await control(sim, "DELETE", f"/sim/churn/{started['id']}")
    assert status == 200 and stopped["running"] is False and 5 <= stopped["operations"] < 60
    assert stopped["changes"][0]["kind"] == "framework_added"
    assert stopped["changes"][1] == {"at": stopped["changes"][1]["at"], "kind": "app_created",
                                     "app_id": "/churn", "instances": 0}
    assert len(sim.model.app_tasks("/churn")) == sim.model.apps["/churn"]["instances"]
