"""Every shared fixture through the VIP derivation: golden files, plus the key facts spelled out.

The golden files hold everything; the assertions below restate, from the rules of reference
§3.1-§3.4, the facts a reviewer should be able to check by reading the fixture.
"""

import ipaddress

import orjson
import pytest
from msgspec.structs import replace

from processors.l4lb.derive import derive_vips
from tests.unit.l4lb.scenarios import ALL_FIXTURES, FIXTURES, as_json, cluster_of, expected, scenario_name

MARATHON_RANGE = ipaddress.ip_network("11.0.0.0/8")


def derived(folder: str, stem: str):
    cluster = cluster_of(FIXTURES / folder / f"{stem}.json")
    return derive_vips(cluster.tasks, cluster.agents, cluster.frameworks)


def table(result) -> dict[str, tuple]:
    """{key: (name, dns, [ip:port:weight, ...])} with named VIP IPs replaced by the name."""
    out = {}
    for key, vip in result.vips.items():
        shown = key if vip.name is None else key.replace(vip.ip, f"<{vip.name}>")
        out[shown] = (vip.name, vip.dns, [f"{b.ip}:{b.port}:{b.weight}" for b in vip.backends])
    return out


@pytest.mark.parametrize("fixture", ALL_FIXTURES, ids=scenario_name)
def test_fixture_matches_golden_and_replays_identically(fixture):
    cluster = cluster_of(fixture)
    first = derive_vips(cluster.tasks, cluster.agents, cluster.frameworks)
    actual = as_json(first)
    assert actual == expected(fixture, actual)
    again = derive_vips(cluster.tasks, cluster.agents, cluster.frameworks)
    assert orjson.dumps(as_json(again)) == orjson.dumps(actual)  # replay from scratch
    restarted = derive_vips(cluster.tasks, cluster.agents, cluster.frameworks, first.allocations)
    assert orjson.dumps(as_json(restarted)) == orjson.dumps(actual)  # restart with what was published


def test_vip_labels_discovery_and_legacy_forms():
    result = derived("mesos-operator-api", "vip-labels")
    assert table(result) == {
        "tcp/<def>/80": ("def", "def.marathon.l4lb.thisdcos.directory", ["172.17.0.3:9999:1"]),  # vip_port0 -> 1st port
        "tcp/</xyz>/443": ("/xyz", "xyz.marathon.l4lb.thisdcos.directory", ["172.17.0.3:10001:1"]),
        "tcp/</cbd>/80": ("/cbd", "cbd.marathon.l4lb.thisdcos.directory", ["172.17.0.3:9999:1"]),
        "tcp/<jkl>/80": ("jkl", "jkl.marathon.l4lb.thisdcos.directory", ["172.17.0.3:10000:1"]),  # vip_port1 -> 2nd port
        "tcp/</abc>/80": ("/abc", "abc.marathon.l4lb.thisdcos.directory", ["172.17.0.3:9999:1"]),
    }
    assert result.rejections == []
    assert all(ipaddress.ip_address(v.ip) in MARATHON_RANGE for v in result.vips.values())
    assert len({v.ip for v in result.vips.values()}) == 5


def test_tcp_and_udp_on_the_same_port_are_two_vips_on_one_ip():
    result = derived("mesos-operator-api", "tcp-and-udp")
    ip = result.allocations[4][("/app", "marathon")]
    assert list(result.vips) == [f"tcp/{ip}/80", f"udp/{ip}/80"]
    for vip in result.vips.values():
        (backend,) = vip.backends
        assert (backend.ip, backend.port, backend.weight) == ("172.17.0.3", 6416, 1)
        assert backend.task_id == "app.80eefa01-d956-11e8-8b68-70b3d5800002"
        assert vip.dns == "app.marathon.l4lb.thisdcos.directory"


def test_unhealthy_task_is_a_drained_backend():
    """health_check set and no result yet: weight 0 (dcos-net reads it as healthy=false)."""
    result = derived("mesos-operator-api", "unhealthy")
    assert table(result) == {"tcp/</foobar>/80": ("/foobar", "foobar.marathon.l4lb.thisdcos.directory", ["9.0.1.6:80:0"])}


def test_hello_overlay_sdk_vips_container_and_host_networking():
    result = derived("mesos-operator-api", "hello-overlay")
    assert table(result) == {
        "tcp/</api.hello-world>/80": (
            "/api.hello-world",
            "api.hello-world.marathon.l4lb.thisdcos.directory",
            ["10.0.0.49:19630:1"],
        ),
        "tcp/<overlay-vip>/80": ("overlay-vip", "overlay-vip.hello-world.l4lb.thisdcos.directory", ["9.0.2.3:4044:1"]),
        "tcp/<host-vip>/80": ("host-vip", "host-vip.hello-world.l4lb.thisdcos.directory", ["10.0.0.49:4044:1"]),
    }


def test_recovered_agents_host_scope_backend_is_the_agent_port():
    result = derived("mesos-operator-api", "recovered-agents")
    assert table(result) == {"tcp/</web>/10080": ("/web", "web.marathon.l4lb.thisdcos.directory", ["172.17.0.4:16424:1"])}


@pytest.mark.parametrize("stem", ["operator-api", "pod-tasks", "dns-hostname", "hello-world", "state-overlay", "state6"])
def test_fixtures_without_vip_labels_give_nothing(stem):
    folder = "mesos-state" if stem.startswith("state") else "mesos-operator-api"
    result = derived(folder, stem)
    assert result.vips == {} and result.rejections == []


@pytest.mark.parametrize("stem", ["invalid-port", "missing-port"])
def test_malformed_minuteman_labels_are_rejected_and_nothing_else_is_lost(stem):
    result = derived("minuteman-vips", stem)
    value = {"invalid-port": "invalid-port::1234", "missing-port": "missing-port"}[stem]
    task_id = "catsmeow.1d28d7c0-1f1c-11e6-bc04-4e40412869d8"
    assert [(r.task_id, r.label, r.value) for r in result.rejections] == [(task_id, "VIP_0", value)]
    assert result.vips == {}  # that label was the fixture's only declaration
    # The same cluster with a good label next to the bad one keeps the good one.
    cluster = cluster_of(FIXTURES / "minuteman-vips" / f"{stem}.json")
    (task,) = cluster.tasks.values()
    port = replace(task.discovery.ports[0], labels=task.discovery.ports[0].labels | {"VIP_1": "1.2.3.4:5000"})
    patched = replace(task, discovery=replace(task.discovery, ports=[port]))
    again = derive_vips({task.id: patched}, cluster.agents, cluster.frameworks)
    assert table(again) == {"tcp/1.2.3.4/5000": (None, None, ["10.0.0.243:26645:1"])}
    assert [r.value for r in again.rejections] == [value]


def test_named_base_vips_agent_state():
    result = derived("minuteman-vips", "named-base-vips")
    assert table(result) == {"tcp/<merp>/5000": ("merp", "merp.marathon.l4lb.thisdcos.directory", ["10.0.0.243:12049:1"])}


def test_overlay_container_scope_backend_is_the_container_ip():
    result = derived("minuteman-vips", "overlay")
    (vip,) = result.vips.values()
    assert result.vips == {"tcp/1.2.3.4/5000": vip} and vip.name is None and vip.dns is None
    assert [(b.ip, b.port, b.weight, b.agent_ip) for b in vip.backends] == [("9.0.1.130", 80, 1, "10.0.1.248")]


def test_minuteman_state5_same_port_on_tcp_and_udp_ip_vip():
    assert table(derived("minuteman-vips", "state5")) == {
        "tcp/1.2.3.4/5000": (None, None, ["10.0.0.243:26645:1"]),
        "udp/1.2.3.4/5000": (None, None, ["10.0.0.243:26645:1"]),
    }


@pytest.mark.parametrize(
    ("folder", "stem", "vips"),
    [
        # Discovery label VIP_0 on the task's port 19426 (no scope: the task IP, here the agent's).
        ("mesos-state", "state_di", {"tcp/1.2.3.4/8080": (None, None, ["10.0.2.234:19426:1"])}),
        ("minuteman-vips", "state_di", {"tcp/1.2.3.4/8080": (None, None, ["10.0.2.234:19426:1"])}),
        # Legacy vip_PORT0=tcp://1.2.3.4:5000: the agent IP and the first port resource.
        ("mesos-state", "state5", {"tcp/1.2.3.4/5000": (None, None, ["10.10.0.38:10834:1"])}),
        ("mesos-state", "state3", {"tcp/1.2.3.4/5000": (None, None, ["10.10.0.109:8014:1"])}),
        ("mesos-state", "docker", {"tcp/1.2.3.4/5000": (None, None, ["10.0.2.4:28027:1"])}),
        ("mesos-state", "two-healthcheck-free-vips-state", {
            "tcp/4.3.2.1/1234": (None, None, ["33.33.33.1:31362:1", "33.33.33.1:31634:1"]),
            "tcp/4.3.2.2/1234": (None, None, ["33.33.33.1:31215:1", "33.33.33.1:31290:1"]),
        }),
        # Old `vip` key on discovery ports 10000/tcp and 10001/udp (no scope: task IP:number).
        ("mesos-state", "state7", {
            "tcp/1.2.3.4/8080": (None, None, ["10.0.2.234:10000:1"]),
            "udp/1.2.3.4/8081": (None, None, ["10.0.2.234:10001:1"]),
        }),
        ("mesos-state", "ucr-bridge-mode", {
            # Docker bridge and UCR bridge, both network-scope host: the agent IP and host port.
            "tcp/</foo-1>/5000": ("/foo-1", "foo-1.marathon.l4lb.thisdcos.directory", ["10.0.2.5:21768:1"]),
            "tcp/</foo>/5000": ("/foo", "foo.marathon.l4lb.thisdcos.directory", ["10.0.2.5:29025:1"]),
        }),
    ],
)
def test_ip_and_legacy_vips_of_master_and_agent_states(folder, stem, vips):
    result = derived(folder, stem)
    assert table(result) == vips and result.rejections == []


def test_fake2_container_scope_without_any_task_ip_is_reported():
    result = derived("mesos-state", "fake2")
    assert result.vips == {}
    assert [(r.label, r.value, r.why) for r in result.rejections] == [
        ("vip", "1.2.3.4:8080", "network-scope container, but the task reports no IP address")
    ]


@pytest.mark.parametrize("folder", ["mesos-state", "minuteman-vips"])
def test_bad_state_gaal_one_ip_vip_many_backends(folder):
    result = derived(folder, "bad-state-gaal")
    (vip,) = result.vips.values()
    assert list(result.vips) == ["tcp/10.22.126.49/5000"]
    tasks = cluster_of(FIXTURES / folder / "bad-state-gaal.json").tasks.values()
    labelled = [t for t in tasks if "vip_PORT0" in t.labels and t.state == "TASK_RUNNING"]
    assert len(vip.backends) == len(labelled) > 1
    assert {b.ip for b in vip.backends} <= {"10.22.126.51", "10.22.126.68", "10.22.126.228"}
    assert all(b.weight == (1 if t.healthy is not False else 0) for b in vip.backends for t in labelled if t.id == b.task_id)
