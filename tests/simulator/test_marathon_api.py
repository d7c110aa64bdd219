"""The Marathon API over real HTTP: /v2/apps and the /v2/events SSE bus."""

from __future__ import annotations

import time

from tests.simulator.test_mesos_api import AGENT_IDS, WEB

TASK_KEYS = {"id", "appId", "host", "slaveId", "ports", "servicePorts", "ipAddresses", "state", "stagedAt",
             "startedAt", "version", "localVolumes"}


async def test_apps_embed_tasks_only_when_asked(cluster, http, control):
    await control(cluster, "POST", "/sim/apps", dict(WEB, healthChecks=[{"protocol": "MESOS_HTTP", "path": "/"}]))
    async with http.get(cluster.marathon_url + "/v2/apps") as response:
        bare = await response.json()
    assert [a["id"] for a in bare["apps"]] == ["/sleep", "/prod/web"]
    assert all("tasks" not in a for a in bare["apps"])
    async with http.get(cluster.marathon_url + "/v2/apps?embed=apps.tasks") as response:
        apps = (await response.json())["apps"]
    web = apps[1]
    assert (web["instances"], web["tasksRunning"], web["tasksHealthy"]) == (2, 2, 2)
    assert web["container"]["portMappings"][0]["servicePort"] == 10001  # 10000 is /sleep's
    first, second = web["tasks"]
    assert set(first) == TASK_KEYS | {"healthCheckResults"}
    assert (first["appId"], first["state"], first["slaveId"], first["host"]) == (
        "/prod/web", "TASK_RUNNING", AGENT_IDS[0], "10.0.5.163")
    assert first["ipAddresses"] == [{"ipAddress": "172.17.0.2", "protocol": "IPv4"}]
    assert first["servicePorts"] == [10001] and len(first["ports"]) == 1
    assert first["healthCheckResults"][0]["alive"] is True
    assert first["healthCheckResults"][0]["taskId"] == first["id"]
    assert first["id"].startswith("prod_web.")
    assert second["slaveId"] == AGENT_IDS[1]
    sleep_task = apps[0]["tasks"][0]
    assert (sleep_task["id"], sleep_task["ports"], sleep_task["startedAt"]) == (
        "sleep.bf108244-ec7f-11e5-b98e-82ce0fb60967", [10000], "2016-03-17T20:35:11.722Z")


async def test_one_app_by_id_and_unknown_app(cluster, http, control):
    await control(cluster, "POST", "/sim/apps", WEB)
    async with http.get(cluster.marathon_url + "/v2/apps/prod/web") as response:
        app = (await response.json())["app"]
    assert app["id"] == "/prod/web" and len(app["tasks"]) == 2
    async with http.get(cluster.marathon_url + "/v2/apps/prod/web/tasks") as response:
        assert {t["id"] for t in (await response.json())["tasks"]} == {t["id"] for t in app["tasks"]}
    async with http.get(cluster.marathon_url + "/v2/apps/x") as response:
        assert response.status == 404
        assert await response.json() == {"message": "App '/x' does not exist"}


async def test_event_bus_attaches_then_reports_a_launch(cluster, event_bus, control):
    stream = await event_bus(cluster)
    kind, attached = await stream.event()
    assert kind == "event_stream_attached"
    assert attached["remoteAddress"] == "127.0.0.1"
    before = time.time()
    status, reply = await control(cluster, "POST", "/sim/apps", WEB)
    assert status == 200
    events = await stream.events(6)
    assert [k for k, _ in events] == ["api_post_event", "status_update_event", "status_update_event",
                                      "status_update_event", "status_update_event", "deployment_success"]
    post = events[0][1]
    assert (post["uri"], post["clientIp"], post["appDefinition"]["id"]) == ("/v2/apps", "127.0.0.1", "/prod/web")
    updates = [data for kind, data in events if kind == "status_update_event"]
    launched = [c["task_id"] for c in reply["changes"] if c.get("state") == "TASK_STAGING"]
    assert [(u["taskId"], u["taskStatus"]) for u in updates] == [
        (launched[0], "TASK_STAGING"), (launched[0], "TASK_RUNNING"),
        (launched[1], "TASK_STAGING"), (launched[1], "TASK_RUNNING")]
    running = updates[1]
    assert (running["appId"], running["host"], running["slaveId"]) == ("/prod/web", "10.0.5.163", AGENT_IDS[0])
    assert running["ipAddresses"] == [{"ipAddress": "172.17.0.2", "protocol": "IPv4"}]
    assert running["version"] == post["appDefinition"]["version"]
    assert updates[0]["ipAddresses"] == []
    plan = events[5][1]["plan"]
    assert plan["steps"] == [{"actions": [{"action": "StartApplication", "app": "/prod/web"}]}]
    stamps = [c["at"] for c in reply["changes"]]
    assert before <= stamps[0] and stamps == sorted(stamps) and stamps[-1] <= time.time()


async def test_event_type_filter(cluster, event_bus, control):
    stream = await event_bus(cluster, "?event_type=status_update_event&event_type=api_post_event")
    await control(cluster, "POST", "/sim/apps", dict(WEB, instances=1))
    events = await stream.events(3)
    assert [k for k, _ in events] == ["api_post_event", "status_update_event", "status_update_event"]
    # deployment_success and event_stream_attached were filtered out; the next event is the kill.
    task_id = events[1][1]["taskId"]
    await control(cluster, "DELETE", f"/sim/tasks/{task_id}")
    assert [(k, d["taskStatus"]) for k, d in await stream.events(2)] == [
        ("status_update_event", "TASK_KILLING"), ("status_update_event", "TASK_KILLED")]


async def test_health_change_reaches_both_apis(cluster, http, event_bus, subscribe, control):
    _, reply = await control(cluster, "POST", "/sim/apps", dict(WEB, instances=1, healthChecks=[{"protocol": "HTTP"}]))
    task_id = reply["changes"][1]["task_id"]
    mesos = await subscribe(cluster)
    await mesos.event()  # SUBSCRIBED
    marathon = await event_bus(cluster)
    await marathon.event()  # attached
    status, reply = await control(cluster, "POST", f"/sim/tasks/{task_id}/health", {"healthy": False})
    assert status == 200
    [change] = reply["changes"]
    assert (change["kind"], change["task_id"], change["state"], change["healthy"]) == (
        "task_health", task_id, "TASK_RUNNING", False)
    update = (await mesos.event())["task_updated"]
    assert (update["state"], update["status"]["healthy"], update["status"]["task_id"]["value"]) == (
        "TASK_RUNNING", False, task_id)
    kind, event = await marathon.event()
    assert kind == "health_status_changed_event"
    assert (event["taskId"], event["appId"], event["alive"]) == (task_id, "/prod/web", False)
    assert event["instanceId"] == task_id.replace(".", ".marathon-", 1)
    async with http.get(cluster.marathon_url + "/v2/apps/prod/web") as response:
        app = (await response.json())["app"]
    assert (app["tasksHealthy"], app["tasksUnhealthy"]) == (0, 1)
    assert app["tasks"][0]["healthCheckResults"][0]["consecutiveFailures"] == 1


async def test_keep_alive_comment_and_accept_header(start_sim, http, event_bus):
    sim = await start_sim(heartbeat_interval=0.1)
    stream = await event_bus(sim)
    assert (await stream.frame())[0] == "event_stream_attached"
    assert await stream.frame() == ("comment", None)
    async with http.get(sim.marathon_url + "/v2/events", headers={"Accept": "application/json"}) as response:
        assert response.status == 406
