"""Servers, health, names, networking modes and blue/green merging."""

import pytest

from processors.haproxy.services import server_ids, server_name
from schemas.haproxy import HealthCheck, Server, Service
from schemas.marathon import HealthCheck as MarathonCheck
from schemas.marathon import PortDefinition
from tests.unit.haproxy_derive.builders import bridge_app, container_app, derive, host_app, only, task


def test_reference_golden_example():
    """marathon-lb.md §2.8: /nginx, vhost test.example.com, HTTP check on / every 2 s, max
    failures 10, timeout 10 s, one task agent1 / 1.1.1.1:1024."""
    app = host_app("/nginx", labels={"HAPROXY_0_VHOST": "test.example.com"},
                   checks=[MarathonCheck(protocol="HTTP", port_index=0, path="/", interval_seconds=2,
                                         timeout_seconds=10, max_consecutive_failures=10)])
    derived = derive(app, [task("nginx.1", app_id="/nginx", ports=(1024,), host="agent1", agent_id="a1", alive=[True])],
                     agent_ips={"a1": "1.1.1.1"})
    (service,) = derived.services.values()
    assert service == Service(
        group="", app_id="/nginx", service_port=10000, backend="nginx_10000", bind_port=10000, mode="http",
        servers=[Server(name="agent1_1_1_1_1_1024", id=28363, ip="1.1.1.1", port=1024, task_id="nginx.1", healthy=True)],
        vhosts=["test.example.com"], health_check=HealthCheck(kind="http", interval_s=2, timeout_s=10, fall=11, path="/"))


@pytest.mark.parametrize("state, serves", [
    ("TASK_RUNNING", True), ("TASK_UNREACHABLE", True), ("TASK_LOST", True),
    ("TASK_STAGING", False), ("TASK_STARTING", False), ("TASK_KILLING", False), ("TASK_KILLED", False),
    ("TASK_FINISHED", False), ("TASK_FAILED", False), ("TASK_ERROR", False), ("TASK_DROPPED", False),
    ("TASK_GONE", False), ("TASK_GONE_BY_OPERATOR", False), ("TASK_UNKNOWN", False),
])
def test_which_states_serve(state, serves):
    service = only(host_app(), [task("web.1", state=state)])
    assert [s.task_id for s in service.servers] == (["web.1"] if serves else [])


def test_health_of_servers():
    tasks = [task("web.1", alive=[True]), task("web.2", ports=(31001,), alive=[False, True]),
             task("web.3", ports=(31002,), alive=[False]), task("web.4", ports=(31003,))]
    service = only(host_app(checks=[MarathonCheck(protocol="TCP", port_index=0)]), tasks)
    assert [(s.task_id, s.healthy) for s in service.servers] == [("web.1", True), ("web.2", True), ("web.3", False), ("web.4", False)]
    assert [s.healthy for s in only(host_app(), tasks).servers] == [None] * 4


def test_zero_servers_keep_the_record():
    assert only(host_app(instances=0)).servers == []


def test_names_and_ids():
    assert server_name("agent1", "1.1.1.1", 1024) == "agent1_1_1_1_1_1024"
    assert server_name("10.0.1.11", "9.0.1.5", 80) == "10_0_1_11_9_0_1_5_80"
    assert server_name("10.0.1.11", "10.0.1.11", 31001) == "10_0_1_11_31001"
    ids = server_ids([f"n{i}" for i in range(2000)])
    assert len(set(ids)) == 2000 and 0 not in ids and max(ids) < 32767
    assert server_ids(["a", "a"])[0] != server_ids(["a", "a"])[1]  # a collision is re-hashed


def test_servers_sorted_by_name_and_agent_ip_preferred():
    tasks = [task("web.2", host="b-host", agent_id="agent-2"), task("web.1", host="a-host", agent_id="agent-1"),
             task("web.3", host="10.9.9.9", agent_id="unknown"), task("web.4", host="c-host", agent_id="unknown")]
    derived = derive(host_app(), tasks)
    (service,) = derived.services.values()
    assert [(s.name, s.ip) for s in service.servers] == [
        ("10_9_9_9_31000", "10.9.9.9"), ("a-host_10_0_0_1_31000", "10.0.0.1"), ("b-host_10_0_0_2_31000", "10.0.0.2")]
    assert derived.notes == ["task web.4: agent unknown is unknown and the host name 'c-host' is not resolved here"]


def test_ip_per_task_uses_task_ip_and_container_port():
    service = only(container_app(), [task("web.1", ports=(), ips=("9.0.1.5",), host="10.0.1.11")])
    assert [(s.name, s.ip, s.port) for s in service.servers] == [("10_0_1_11_9_0_1_5_80", "9.0.1.5", 80)]
    # Marathon <= 1.4 gave such an app no service port: HAPROXY_0_PORT is then needed.
    legacy = container_app(mappings=(), discovery_ports=[8080], labels={"HAPROXY_0_PORT": "10050"},
                           port_definitions=[PortDefinition(port=0)])
    service = only(legacy, [task("web.1", ports=(), ips=("9.0.1.5",), host="10.0.1.11")])
    assert (service.service_port, service.servers[0].port) == (10050, 8080)


def test_bridge_falls_back_to_container_port_and_zips_ports():
    service = only(bridge_app(), [task("web.1", ports=())])
    assert service.servers[0].port == 8080
    derived = derive(bridge_app(mappings=((80, 10000), (81, 10001))), [task("web.1", ports=(31000,))])
    assert [len(s.servers) for s in derived.services.values()] == [1, 0]  # the task has no second host port


def zdd_app(app_id, started, target, instances, port, new_instances=None, scaled=None):
    labels = {"HAPROXY_DEPLOYMENT_GROUP": "shop", "HAPROXY_DEPLOYMENT_STARTED_AT": started,
              "HAPROXY_DEPLOYMENT_TARGET_INSTANCES": str(target), "HAPROXY_0_PORT": "10000", "HAPROXY_GROUP": "ext"}
    if new_instances is not None:
        labels["HAPROXY_DEPLOYMENT_NEW_INSTANCES"] = str(new_instances)
    return host_app(app_id, ports=(port,), labels=labels, instances=instances, last_scaling_at=scaled,
                    checks=[MarathonCheck(protocol="TCP", port_index=0)])


def test_blue_green_merge_and_drain():
    blue = zdd_app("/shop-blue", "2024-01-01T10:00:00", 3, 3, 10001)
    green = zdd_app("/shop-green", "2024-01-01T11:00:00", 3, 2, 10002)
    tasks = [task(f"shop-blue.{i}", app_id="/shop-blue", ports=(31000 + i,), alive=[True]) for i in range(3)] + \
            [task(f"shop-green.{i}", app_id="/shop-green", ports=(32000 + i,), alive=[True]) for i in range(2)]
    derived = derive([green, blue], tasks)
    (key, service), = derived.services.items()
    assert key == "ext:/shop:10001" and service.backend == "shop_10000" and service.bind_port == 10000
    # min(3 old, 2 healthy new, 2 + 3 - 3) = 2 old tasks drain, the first two by id.
    assert sorted(s.task_id for s in service.servers if s.draining) == ["shop-blue.0", "shop-blue.1"]


def test_traffic_split_takes_the_app_scaled_last_as_new():
    blue = zdd_app("/shop-blue", "2024-01-01T10:00:00", 4, 2, 10001, scaled="2024-01-01T12:00:00Z")
    green = zdd_app("/shop-green", "2024-01-01T11:00:00", 4, 2, 10002, new_instances=2, scaled="2024-01-01T11:30:00Z")
    tasks = [task("shop-blue.0", app_id="/shop-blue", alive=[True]), task("shop-green.0", app_id="/shop-green", ports=(31001,), alive=[True])]
    (service,) = derive([blue, green], tasks).services.values()
    assert service.service_port == 10002  # green is the base: blue scaled last, so blue is new


def test_a_plain_app_with_the_group_id_wins():
    plain = host_app("/shop")
    member = zdd_app("/shop-blue", "2024-01-01T10:00:00", 3, 3, 10001)
    derived = derive([plain, member])
    assert list(derived.services) == [":/shop:10000"]
    assert [(r.app_id, r.label) for r in derived.rejections] == [("/shop-blue", "HAPROXY_DEPLOYMENT_GROUP")]
