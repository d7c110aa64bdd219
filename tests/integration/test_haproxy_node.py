"""The haproxy node role end to end: simulator -> producer -> processor -> node -> a real
HAProxy routing by vhost to real HTTP backends on loopback.

- a task killed changes the servers through the runtime API, without a reload (and the
  node's metrics say so);
- an unhealthy task is left out, and back once healthy; an app scaled to zero answers 503;
- a node serves its own group only;
- an app with a bad label is refused (rejections) and the others, old and new, keep routing;
- the labels' routing: paths and rule weights, the HTTPS redirect, HTTPS by SNI, sticky
  sessions, TCP mode on a PORT override, the X-Marathon-App-Id frontend.
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
from tests.unit.metrics.scrape import scrape, value

OPERATOR_API = FIXTURES / "mesos-operator-api" / "operator-api.json"


class Edge:
    """A running pipeline with a node serving group `external`, backends b1..b6 whose ports
    are the host ports of one agent, 127.0.0.1."""

    def __init__(self, pipeline: Pipeline, node: Node, backends: list[Backend], ports: SharedPorts):
        self.pipeline, self.node, self.backends, self.ports = pipeline, node, backends, ports
        self.http = ports.http
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


async def served_by(port: int, host: str, tries: int = 6, sni: bool = False) -> set[str]:
    """The backends that answered `tries` requests for `host` (non-200 answers as 'status N');
    over TLS with `host` as the SNI name when `sni`."""
    found = set()
    for _ in range(tries):
        reply = await asyncio.to_thread(get, port, "/", host, host if sni else None)
        found.add(reply.body if reply.status == 200 else f"status {reply.status}")
    return found


async def answered(port: int) -> str:
    """Who answers a GET on 127.0.0.1:port ('refused' while nothing listens)."""
    try:
        return (await asyncio.to_thread(get, port)).body
    except OSError:
        return "refused"


async def eventually_served(port: int, host: str, wanted: set[str], timeout: float = 30.0, sni: bool = False) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (found := await served_by(port, host, sni=sni)) != wanted:
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
            running = Edge(pipeline, node, backends, settings.ports)
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
        before = scrape(lb.node)
        assert value(before, "wayfinder_haproxy_reloads_total") == reloads >= 1
        assert value(before, "wayfinder_haproxy_runtime_passes_total") == lb.loop.role.runtime_passes
        assert value(before, "wayfinder_role_ready", role="haproxy") == 1
        assert value(before, "wayfinder_role_apply_failures_total", role="haproxy") == 0

        await lb.pipeline.control("DELETE", f"/sim/tasks/{running[0]['task_id']}")
        remaining = await lb.pipeline.eventually(lambda: lb.backends_of("/shop/web"), lambda found: len(found) == 1)
        await eventually_served(lb.http, "web.example.com", remaining)
        assert {(await asyncio.to_thread(get, service_port)).body for _ in range(4)} == remaining
        assert lb.loop.role.reloads == reloads, "a task kill must not reload HAProxy"
        assert lb.loop.role.runtime_passes >= 1
        after = scrape(lb.node)
        assert value(after, "wayfinder_haproxy_reloads_total") == reloads
        assert value(after, "wayfinder_haproxy_runtime_passes_total") \
            >= value(before, "wayfinder_haproxy_runtime_passes_total") + 1
        assert value(after, "wayfinder_role_passes_total", role="haproxy") \
            > value(before, "wayfinder_role_passes_total", role="haproxy")


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


async def test_paths_redirect_sni_sticky_tcp_and_app_id_routing_from_labels(kafka_bootstrap, tmp_path):
    async with edge(kafka_bootstrap, tmp_path) as lb:
        root_port, path_port, secure_port, sticky_port, tcp_service, tcp_bind = free_ports(6)
        external = {"HAPROXY_GROUP": "external"}
        await lb.launch("/shop/home", 1, root_port, {**external, "HAPROXY_0_VHOST": "shop.test"})
        await lb.launch("/shop/zapi", 1, path_port, {**external, "HAPROXY_0_VHOST": "shop.test", "HAPROXY_0_PATH": "/api"})
        await lb.launch("/secure", 1, secure_port, {**external, "HAPROXY_0_VHOST": "secure.test",
                                                    "HAPROXY_0_REDIRECT_TO_HTTPS": "true"})
        await lb.launch("/sticky", 1, sticky_port, {**external, "HAPROXY_0_VHOST": "sticky.test", "HAPROXY_0_STICKY": "yes"})
        await lb.launch("/raw", 1, tcp_service, {**external, "HAPROXY_0_MODE": "tcp", "HAPROXY_0_PORT": str(tcp_bind)})
        names = {}
        for app_id in ("/shop/home", "/shop/zapi", "/secure", "/sticky", "/raw"):
            (names[app_id],) = await lb.pipeline.eventually(lambda a=app_id: lb.backends_of(a), lambda found: len(found) == 1)

        # PATH (weight 1 by default) wins over the same vhost without a path, although the
        # path app sorts last by app id (the order rules take at equal weights).
        api = await lb.pipeline.eventually(lambda: asyncio.to_thread(get, lb.http, "/api/items", "shop.test"),
                                           lambda reply: reply.body == names["/shop/zapi"])
        assert (api.status, api.headers["x-backend-path"]) == (200, "/api/items")
        await eventually_served(lb.http, "shop.test", {names["/shop/home"]})
        # REDIRECT_TO_HTTPS on :80, and the same vhost by SNI on :443 with the node's certificate.
        await eventually_served(lb.ports.https, "secure.test", {names["/secure"]}, sni=True)
        redirect = await asyncio.to_thread(get, lb.http, "/login", "secure.test")
        assert (redirect.status, redirect.headers["location"]) == (301, "https://secure.test/login")
        # STICKY: HAProxy sets marathon-lb's cookie; sent back, it keeps the same server.
        await eventually_served(lb.http, "sticky.test", {names["/sticky"]})
        first = await asyncio.to_thread(get, lb.http, "/", "sticky.test")
        assert first.status == 200 and first.headers["set-cookie"].startswith("mesosphere_server_id=")
        cookie = first.headers["set-cookie"].split(";")[0]
        again = await asyncio.to_thread(get, lb.http, "/", "sticky.test", None, {"Cookie": cookie})
        assert again.body == first.body == names["/sticky"]
        # MODE tcp, bound at HAPROXY_0_PORT instead of the service port: bytes pass through.
        await lb.pipeline.eventually(lambda: answered(tcp_bind), lambda body: body == names["/raw"])
        with pytest.raises(OSError):
            await asyncio.to_thread(get, tcp_service)
        # The app-id frontend routes by X-Marathon-App-Id to the app's first http port.
        by_id = await lb.pipeline.eventually(
            lambda: asyncio.to_thread(get, lb.ports.appid, "/", "anything", None, {"X-Marathon-App-Id": "/shop/zapi"}),
            lambda reply: reply.body == names["/shop/zapi"])
        assert by_id.status == 200
