"""The HAProxy stage against a real Kafka: simulator -> producers -> processor -> haproxy."""

import pytest

from processors.haproxy.services import server_ids, server_name
from tests.integration.pipeline import Pipeline, RunningProcessor, changes_of
from tests.scenarios.mesos_fixtures import FIXTURES

pytestmark = pytest.mark.kafka

OPERATOR_API = FIXTURES / "mesos-operator-api" / "operator-api.json"


async def external(pipeline) -> dict[str, dict]:
    """The records of LB group ``external`` (the fixture's own apps have no group)."""
    return {key: value for key, value in (await pipeline.table("haproxy")).items() if value["group"] == "external"}


def service_of(app_id: str, service_port: int, servers: list[dict], **fields) -> dict:
    """A record as the topic holds it, with marathon-lb's defaults."""
    return {"group": "external", "app_id": app_id, "service_port": service_port,
            "backend": f"{app_id.lstrip('/').replace('/', '_')}_{service_port}", "bind_port": service_port,
            "mode": "tcp", "servers": servers, "bind_addr": "*", "bind_options": None, "balance": "roundrobin",
            "vhosts": [], "path": None, "weight": 0, "sticky": False, "redirect_to_https": False, "use_hsts": False,
            "auth": None, "ssl_cert": None, "network_allowed": [], "health_check": None, "proxypass_path": None,
            "revproxy_path": None, "redirect_path": None, "frontend_options": [], "backend_options": [], **fields}


async def expected_servers(pipeline, task_ids: list[str]) -> list[dict]:
    app_tasks = await pipeline.table("app-tasks")
    agents = await pipeline.table("agents")
    servers = []
    for task_id in task_ids:
        task = app_tasks[task_id]
        ip = agents[task["agent_id"]]["ip"]
        servers.append({"name": server_name(task["host"], ip, task["ports"][0]), "ip": ip, "port": task["ports"][0],
                        "task_id": task_id, "draining": False, "healthy": None, "check_port": None})
    servers.sort(key=lambda s: s["name"])
    for server, server_id in zip(servers, server_ids([s["name"] for s in servers])):
        server["id"] = server_id
    return [{key: server[key] for key in ("name", "id", "ip", "port", "task_id", "draining", "healthy", "check_port")}
            for server in servers]


async def test_vhost_app_then_a_bad_label_app_then_a_good_one(kafka_bootstrap):
    async with Pipeline(kafka_bootstrap, mesos_state=OPERATOR_API) as pipeline, RunningProcessor(pipeline):
        shop = {"id": "/shop/web", "instances": 2, "portDefinitions": [{"port": 10001}],
                "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "Shop.Example.com", "HAPROXY_0_STICKY": "yes"}}
        launched = await pipeline.control("POST", "/sim/apps", shop)
        running = sorted(c["task_id"] for c in changes_of(launched, state="TASK_RUNNING"))
        assert len(running) == 2

        def shop_ready(table):
            record = table.get("external:/shop/web:10001")
            return record is not None and len(record["servers"]) == 2

        table = await pipeline.eventually(lambda: external(pipeline), shop_ready, timeout=30)
        assert table == {"external:/shop/web:10001": service_of(
            "/shop/web", 10001, await expected_servers(pipeline, running),
            mode="http", vhosts=["shop.example.com"], sticky=True)}

        bad = {"id": "/bad", "instances": 1, "portDefinitions": [{"port": 10002}],
               "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_PORT": "99999"}}
        good = {"id": "/good", "instances": 1, "portDefinitions": [{"port": 10003}], "labels": {"HAPROXY_GROUP": "external"}}
        await pipeline.control("POST", "/sim/apps", bad)
        launched = await pipeline.control("POST", "/sim/apps", good)
        (good_task,) = [c["task_id"] for c in changes_of(launched, state="TASK_RUNNING")]

        table = await pipeline.eventually(lambda: external(pipeline),
                                          lambda t: len(t.get("external:/good:10003", {}).get("servers", [])) == 1, timeout=30)
        assert sorted(table) == ["external:/good:10003", "external:/shop/web:10001"]
        assert table["external:/good:10003"] == service_of("/good", 10003, await expected_servers(pipeline, [good_task]))
        rejections = await pipeline.eventually(lambda: pipeline.values("rejections"),
                                               lambda v: any(r["source"] == "haproxy" for r in v), timeout=30)
        assert [(r["what"], r["why"], r["excerpt"]) for r in rejections if r["source"] == "haproxy"] == [
            ("HAProxy label HAPROXY_0_PORT of port index 0 of app /bad", "is not an integer from 1 to 65535",
             "HAPROXY_0_PORT=99999")]
