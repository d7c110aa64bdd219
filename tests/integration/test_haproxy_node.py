"""The haproxy node role end to end: simulator -> producer -> processor -> node -> a real
HAProxy routing by vhost to real HTTP backends on loopback.

- a task killed changes the servers through the runtime API, without a reload;
- an unhealthy task is left out, and back once healthy; an app scaled to zero answers 503;
- a node serves its own group only;
- an app with a bad label is refused (rejections) and the others, old and new, keep routing.
"""

from __future__ import annotations

import asyncio
import shutil
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from appliers.haproxy.process import HAPROXY, group_members
from appliers.haproxy.settings import HaproxySettings, SharedPorts
from appliers.node import Node, NodeOptions
from tests.haproxy.loopback import Backend, free_ports, get
from tests.integration.pipeline import Pipeline, RunningProcessor, changes_of
from tests.scenarios.mesos_fixtures import FIXTURES

OPERATOR_API = FIXTURES / "mesos-operator-api" / "operator-api.json"


class Edge:
    """A running pipeline with a node serving group `external`, backends b1..b6 whose ports
    are the host ports of one agent, 127.0.0.1."""

    def __init__(self, pipeline: Pipeline, node: Node, backends: list[Backend], http: int):
        self.pipeline, self.node, self.backends, self.http = pipeline, node, backends, http
        self.loop = node.loops["haproxy"]

    async def launch(self, app_id: str, instances: int, service_port: int, labels: dict, **fields) -> list[dict]:
        reply = await self.pipeline.control("POST", "/sim/apps", {
            "id": app_id, "instances": instances, "portDefinitions": [{"port": service_port}],
            "constraints": [["hostname", "CLUSTER", "127.0.0.1"]], "labels": labels, **fields})
        return changes_of(reply, state="TASK_RUNNING")

    async def backends_of(self, app_id: str) -> set[str]:
        """The names of the backends whose ports the app's running tasks hold (app-tasks table)."""
        app_tasks = await self.pipeline.table("app-tasks")
        ports = {p for task in app_tasks.values() if task["app_id"] == app_id and task["state"] == "TASK_RUNNING"
                 for p in task["ports"]}
        return {b.name for b in self.backends if b.port in ports}


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


@asynccontextmanager
async def edge(kafka_bootstrap: str, tmp_path: Path):
    if not Path(HAPROXY).exists() or shutil.which("openssl") is None:
        pytest.skip(f"{HAPROXY} or openssl is missing (Debian packages haproxy, openssl)")
    backends = [Backend(f"b{n}") for n in range(1, 7)]
    http, https, appid, stats = free_ports(4)
    settings = HaproxySettings(groups=("external",), ports=SharedPorts(http, https, appid, stats), bind="127.0.0.1",
                               directory=str(tmp_path / "haproxy"), hard_stop_after="5s")
    try:
        async with Pipeline(kafka_bootstrap, mesos_state=OPERATOR_API) as pipeline, \
                RunningProcessor(pipeline):
            await pipeline.control("POST", "/sim/agents", {
                "hostname": "127.0.0.1", "port_ranges": [[b.port, b.port] for b in backends]})
            node = Node(NodeOptions(pipeline.bootstrap, pipeline.catalog, "lb-1", "127.0.0.1", roles=("haproxy",),
                                    haproxy=settings))
            stop = asyncio.Event()
            task = asyncio.create_task(node.run(stop))
            running = Edge(pipeline, node, backends, http)
            try:
                await asyncio.wait_for(running.loop.ready.wait(), 60)
                yield running
            finally:
                stop.set()
                await asyncio.wait_for(task, 30)
            group = running.loop.role.process.pid
            assert group is None or group_members(group) == [], "HAProxy left running after the node stopped"
    finally:
        for backend in backends:
            backend.close()


async def test_an_app_is_served_by_vhost_and_a_kill_changes_servers_without_a_reload(kafka_bootstrap, tmp_path):
    async with edge(kafka_bootstrap, tmp_path) as lb:
        (service_port,) = free_ports(1)
        running = await lb.launch("/shop/web", 2, service_port,
                                  {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.example.com"})
        assert len(running) == 2
        both = await lb.pipeline.eventually(lambda: lb.backends_of("/shop/web"), lambda found: len(found) == 2)
        await eventually_served(lb.http, "web.example.com", both)
        assert {(await asyncio.to_thread(get, service_port)).body for _ in range(4)} == both
        assert (await asyncio.to_thread(get, lb.http, "/", "other.example.com")).status == 503
        reloads = lb.loop.role.reloads

        await lb.pipeline.control("DELETE", f"/sim/tasks/{running[0]['task_id']}")
        remaining = await lb.pipeline.eventually(lambda: lb.backends_of("/shop/web"), lambda found: len(found) == 1)
        await eventually_served(lb.http, "web.example.com", remaining)
        assert {(await asyncio.to_thread(get, service_port)).body for _ in range(4)} == remaining
        assert lb.loop.role.reloads == reloads, "a task kill must not reload HAProxy"
        assert lb.loop.role.runtime_passes >= 1


async def test_health_scaling_groups_and_a_bad_label_through_the_pipeline(kafka_bootstrap, tmp_path):
    async with edge(kafka_bootstrap, tmp_path) as lb:
        web_port, internal_port, bad_port, late_port = free_ports(4)
        health = [{"protocol": "HTTP", "path": "/", "portIndex": 0, "intervalSeconds": 2,
                   "maxConsecutiveFailures": 3}]
        running = await lb.launch("/web", 2, web_port, {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.test"},
                                  healthChecks=health)
        await lb.launch("/internal", 1, internal_port, {"HAPROXY_GROUP": "internal", "HAPROXY_0_VHOST": "internal.test"})
        both = await lb.pipeline.eventually(lambda: lb.backends_of("/web"), lambda found: len(found) == 2)
        await eventually_served(lb.http, "web.test", both)
        # Another group's app: no vhost rule, and nothing listens on its service port.
        assert await served_by(lb.http, "internal.test", tries=2) == {"status 503"}
        with pytest.raises(OSError):
            await asyncio.to_thread(get, internal_port)

        # Unhealthy (Marathon's health check result): out of HAProxy; healthy again: back.
        sick = running[0]["task_id"]
        app_tasks = await lb.pipeline.table("app-tasks")
        sick_backend = {b.name for b in lb.backends if b.port in app_tasks[sick]["ports"]}
        await lb.pipeline.control("POST", f"/sim/tasks/{sick}/health", {"healthy": False})
        await eventually_served(lb.http, "web.test", both - sick_backend)
        await lb.pipeline.control("POST", f"/sim/tasks/{sick}/health", {"healthy": True})
        await eventually_served(lb.http, "web.test", both)

        # A bad label refuses that app only; an app deployed after it still routes.
        await lb.launch("/bad", 1, bad_port, {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "bad.test",
                                              "HAPROXY_0_BACKEND_WEIGHT": "heavy"})
        await lb.launch("/late", 1, late_port, {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "late.test"})
        await eventually_served(lb.http, "late.test", await lb.pipeline.eventually(lambda: lb.backends_of("/late"), bool))
        rejections = await lb.pipeline.values("rejections")
        assert any("/bad" in r["what"] and "BACKEND_WEIGHT" in r["what"] for r in rejections), rejections
        assert await served_by(lb.http, "bad.test", tries=2) == {"status 503"}
        assert await served_by(lb.http, "web.test") == both

        # Scaled to zero: the vhost answers 503 and nothing reloads; scaled up: served again.
        reloads = lb.loop.role.reloads
        await lb.pipeline.control("PUT", "/sim/apps/web/instances/0")
        await eventually_served(lb.http, "web.test", {"status 503"})
        await lb.pipeline.control("PUT", "/sim/apps/web/instances/1")
        await eventually_served(lb.http, "web.test", await lb.pipeline.eventually(
            lambda: lb.backends_of("/web"), lambda found: len(found) == 1))
        assert lb.loop.role.reloads == reloads, "scaling must not reload HAProxy"
