"""The haproxy node role end to end: simulator -> producer -> processor (--haproxy) -> node ->
a real HAProxy routing by vhost to real HTTP backends on loopback. A task killed or launched
changes the servers through the runtime API, without a reload."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from appliers.haproxy.process import HAPROXY, group_members
from appliers.haproxy.settings import HaproxySettings, SharedPorts
from appliers.node import Node, NodeOptions
from tests.haproxy.loopback import Backend, free_ports, get
from tests.integration.pipeline import Pipeline, RunningProcessor, changes_of
from tests.scenarios.mesos_fixtures import FIXTURES

OPERATOR_API = FIXTURES / "mesos-operator-api" / "operator-api.json"


async def served_by(port: int, host: str, tries: int = 6) -> set[str]:
    """The backends that answered `tries` requests for `host` (non-200 answers as 'status N')."""
    found = set()
    for _ in range(tries):
        reply = await asyncio.to_thread(get, port, "/", host)
        found.add(reply.body if reply.status == 200 else f"status {reply.status}")
    return found


async def eventually_served(port: int, host: str, wanted: set[str], timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (found := await served_by(port, host)) != wanted:
        assert asyncio.get_running_loop().time() < deadline, f"{host} served by {found}, not {wanted}"
        await asyncio.sleep(0.3)


async def test_an_app_is_served_by_vhost_and_a_kill_changes_servers_without_a_reload(kafka_bootstrap, tmp_path):
    if not Path(HAPROXY).exists() or shutil.which("openssl") is None:
        pytest.skip(f"{HAPROXY} or openssl is missing (Debian packages haproxy, openssl)")
    backends = [Backend("first"), Backend("second")]
    http, https, appid, stats, service_port = free_ports(5)
    settings = HaproxySettings(groups=("external",), ports=SharedPorts(http, https, appid, stats), bind="127.0.0.1",
                               directory=str(tmp_path / "haproxy"), hard_stop_after="5s")
    try:
        async with Pipeline(kafka_bootstrap, mesos_state=OPERATOR_API) as pipeline, \
                RunningProcessor(pipeline, haproxy=True):
            await pipeline.control("POST", "/sim/agents", {
                "hostname": "127.0.0.1", "port_ranges": [[b.port, b.port] for b in backends]})
            launched = await pipeline.control("POST", "/sim/apps", {
                "id": "/shop/web", "instances": 2, "portDefinitions": [{"port": service_port}],
                "constraints": [["hostname", "CLUSTER", "127.0.0.1"]],
                "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.example.com"}})
            running = changes_of(launched, state="TASK_RUNNING")
            assert len(running) == 2

            node = Node(NodeOptions(kafka_bootstrap, pipeline.catalog, "lb-1", "127.0.0.1", roles=("haproxy",),
                                    haproxy=settings))
            stop = asyncio.Event()
            task = asyncio.create_task(node.run(stop))
            loop = node.loops["haproxy"]
            try:
                await asyncio.wait_for(loop.ready.wait(), 60)
                await eventually_served(http, "web.example.com", {"first", "second"})
                assert {(await asyncio.to_thread(get, service_port)).body for _ in range(4)} == {"first", "second"}
                assert (await asyncio.to_thread(get, http, "/", "other.example.com")).status == 503
                reloads = loop.role.reloads

                victim = running[0]
                await pipeline.control("DELETE", f"/sim/tasks/{victim['task_id']}")
                remaining = await still_running(backends, victim, pipeline)
                assert len(remaining) == 1
                await eventually_served(http, "web.example.com", remaining)
                assert {(await asyncio.to_thread(get, service_port)).body for _ in range(4)} == remaining
                assert loop.role.reloads == reloads, "a task kill must not reload HAProxy"
                assert loop.role.runtime_passes >= 1
            finally:
                stop.set()
                await asyncio.wait_for(task, 30)
            group = loop.role.process.pid
            assert group is None or group_members(group) == []
    finally:
        for backend in backends:
            backend.close()


async def still_running(backends: list[Backend], victim: dict, pipeline: Pipeline) -> set[str]:
    """The names of the backends whose host ports the app's remaining tasks hold."""
    app_tasks = await pipeline.eventually(lambda: pipeline.table("app-tasks"), lambda t: victim["task_id"] not in t)
    ports = {p for task in app_tasks.values() if task["app_id"] == "/shop/web" for p in task["ports"]}
    return {b.name for b in backends if b.port in ports}
