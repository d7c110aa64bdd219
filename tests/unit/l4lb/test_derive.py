"""Tasks -> VIP table on hand-made tasks: weights, address families, scopes, one code path."""

import ipaddress
import random

import orjson
import pytest

from processors.l4lb.contributions import contributions_of, weight_of
from processors.l4lb.derive import allocate_all, derive_vips, vips_of
from processors.l4lb.labels import Rejection
from schemas.l4lb import Backend, Vip
from schemas.mesos import Agent, Discovery, DiscoveryPort, Framework, NetworkInfo, Task, TaskStatus
from tests.unit.l4lb.scenarios import as_json

AGENTS = {"a1": Agent("a1", "10.0.0.1", ip="10.0.0.1"), "a2": Agent("a2", "agent-two.example", ip=None)}
FRAMEWORKS = {"fw": Framework("fw", "marathon"), "fw2": Framework("fw2", "marathon"), "sdk": Framework("sdk", "kafka")}


def task(
    task_id, vips, ips=("9.0.1.5",), state="TASK_RUNNING", healthy=None, health_check=False,
    agent="a1", framework="fw", scope=None, port=8080,
):
    labels = {f"VIP_{i}": v for i, v in enumerate(vips)} | ({"network-scope": scope} if scope else {})
    status = TaskStatus("TASK_RUNNING", 1.0, healthy, [NetworkInfo("dcos", list(ips))])
    discovery = Discovery(ports=[DiscoveryPort(port, "tcp", labels=labels)])
    return Task(task_id, "app", framework, agent, state, [status], healthy, health_check, discovery=discovery)


def derive(*tasks, previous=None):
    return derive_vips({t.id: t for t in tasks}, AGENTS, FRAMEWORKS, previous)


@pytest.mark.parametrize(
    ("state", "healthy", "health_check", "weight"),
    [
        ("TASK_RUNNING", True, True, 1),
        ("TASK_RUNNING", None, False, 1),  # no health check at all
        ("TASK_RUNNING", None, True, 0),  # a health check without a result yet (unhealthy.json)
        ("TASK_RUNNING", False, True, 0),
        ("TASK_KILLING", True, True, 0),
        ("TASK_KILLING", None, False, 0),
        ("TASK_STAGING", None, False, None),
        ("TASK_STARTING", True, False, None),
        ("TASK_FINISHED", None, False, None),
    ],
)
def test_weights(state, healthy, health_check, weight):
    assert weight_of(task("t", [], state=state, healthy=healthy, health_check=health_check)) == weight


def test_named_vip_collects_all_tasks_of_the_framework_name_with_their_weights():
    derived = derive(
        task("web.1", ["/web:80"], ips=["9.0.1.5"]),
        task("web.2", ["/web:80"], ips=["9.0.1.6"], healthy=False, health_check=True),
        task("web.3", ["/web:80"], ips=["9.0.1.7"], state="TASK_KILLING", framework="fw2"),  # another framework called marathon
        task("web.4", ["/web:80"], ips=["9.0.1.8"], state="TASK_STAGING"),
    )
    ip = derived.allocations[4][("/web", "marathon")]
    assert list(derived.vips) == [f"tcp/{ip}/80"]
    assert derived.vips[f"tcp/{ip}/80"] == Vip(
        "tcp",
        ip,
        80,
        [
            Backend("9.0.1.5", 8080, 1, "web.1", "10.0.0.1"),
            Backend("9.0.1.6", 8080, 0, "web.2", "10.0.0.1"),
            Backend("9.0.1.7", 8080, 0, "web.3", "10.0.0.1"),
        ],
        name="/web",
        framework="marathon",
        dns="web.marathon.l4lb.thisdcos.directory",
    )
    assert ipaddress.ip_address(ip) in ipaddress.ip_network("11.0.0.0/8")


def test_a_dual_stack_named_vip_gets_one_record_per_family():
    derived = derive(task("v6.1", ["/dual:80"], ips=["172.19.0.2", "fd01:b::2:8000:0:2"]), task("v4.1", ["/v4only:80"]))
    v4, v6 = derived.allocations[4][("/dual", "marathon")], derived.allocations[6][("/dual", "marathon")]
    assert ipaddress.ip_address(v6) in ipaddress.ip_network("fd01:c::/64")
    assert derived.vips[f"tcp/{v4}/80"].backends == [Backend("172.19.0.2", 8080, 1, "v6.1", "10.0.0.1")]
    assert derived.vips[f"tcp/{v6}/80"].backends == [Backend("fd01:b::2:8000:0:2", 8080, 1, "v6.1", "10.0.0.1")]
    assert derived.vips[f"tcp/{v6}/80"].dns == derived.vips[f"tcp/{v4}/80"].dns == "dual.marathon.l4lb.thisdcos.directory"
    assert ("/v4only", "marathon") not in derived.allocations[6]  # no IPv6 backend, no AAAA-family IP


def test_ip_vips_only_take_backends_of_their_own_family():
    derived = derive(
        task("dual.1", ["10.1.2.3:5000", "[fd01:d::9]:5000"], ips=["172.19.0.2", "fd01:b::2"]),
        task("v6only.1", ["10.1.2.3:5000"], ips=["fd01:b::3"]),
    )
    assert {k: [(b.ip, b.port) for b in v.backends] for k, v in derived.vips.items()} == {
        "tcp/10.1.2.3/5000": [("172.19.0.2", 8080)],
        "tcp/fd01:d::9/5000": [("fd01:b::2", 8080)],
    }
    assert derived.vips["tcp/10.1.2.3/5000"].name is None and derived.vips["tcp/10.1.2.3/5000"].dns is None
    assert derived.rejections == [Rejection("v6only.1", "VIP_0", "10.1.2.3:5000", "IPv4 VIP, but the backend has only fd01:b::3")]


def test_host_scope_uses_the_agent_ip_and_needs_one():
    derived = derive(
        task("h.1", ["/h:80"], scope="host", port=31000),
        task("h.2", ["/h:80"], scope="host", port=31001, agent="a2"),
    )
    (vip,) = derived.vips.values()
    assert vip.backends == [Backend("10.0.0.1", 31000, 1, "h.1", "10.0.0.1")]
    assert [(r.task_id, r.why) for r in derived.rejections] == [
        ("h.2", "the backend is the agent's IP, and agent 'agent-two.example' has none")
    ]


def test_tasks_of_unknown_agents_or_frameworks_wait_silently():
    derived = derive(task("lost.1", ["/w:80"], agent="gone"), task("lost.2", ["/w:80"], framework="gone"))
    assert derived.vips == {} and derived.rejections == [] and derived.allocations == {4: {}, 6: {}}


def test_a_bad_label_costs_only_itself():
    good = task("ok.1", ["/ok:80"])
    derived = derive(good, task("mixed.1", ["missing-port", "/mixed:80", "invalid-port::1234"]))
    assert sorted(v.name for v in derived.vips.values()) == ["/mixed", "/ok"]
    assert [(r.task_id, r.value) for r in derived.rejections] == [("mixed.1", "missing-port"), ("mixed.1", "invalid-port::1234")]


def test_one_backend_per_ip_and_port_highest_weight_wins():
    old = task("web.old", ["/web:80"], ips=["9.0.1.5"], state="TASK_KILLING")
    new = task("web.new", ["/web:80"], ips=["9.0.1.5"])
    (vip,) = derive(old, new).vips.values()
    assert vip.backends == [Backend("9.0.1.5", 8080, 1, "web.new", "10.0.0.1")]


def test_explicit_ip_vips_in_the_named_range_push_allocations_aside():
    named = task("n.1", ["/web:80"])
    ip = derive(named).allocations[4][("/web", "marathon")]
    squatter = task("s.1", [f"{ip}:80"])
    derived = derive(named, squatter, previous=derive(named).allocations)
    moved = derived.allocations[4][("/web", "marathon")]
    assert moved != ip and derived.vips[f"tcp/{ip}/80"].name is None and derived.vips[f"tcp/{moved}/80"].name == "/web"


def test_allocations_survive_restarts_and_are_released_when_the_vip_goes():
    web, api = task("web.1", ["/web:80"]), task("api.1", ["/api:80"])
    first = derive(web, api)
    assert derive(web, api, previous=first.allocations) == first
    released = derive(web, previous=first.allocations).allocations[4]
    assert released == {("/web", "marathon"): first.allocations[4][("/web", "marathon")]}


def test_derive_is_contributions_grouped_by_vip_then_vips_of():
    """The incremental path (re-key contributions by VIP, fold each VIP alone) gives the same table."""
    tasks = [
        task(f"t.{i}", [f"/svc{i % 3}:80", "10.1.2.3:5000"], ips=[f"9.0.1.{i}"], healthy=i % 2 == 0, health_check=True)
        for i in range(1, 9)
    ]
    whole = derive(*tasks)
    by_vip: dict = {}
    for t in random.Random(7).sample(tasks, len(tasks)):  # arrival order must not matter
        for c in contributions_of(t, AGENTS[t.agent_id], FRAMEWORKS[t.framework_id]).contributions:
            by_vip.setdefault(c.vip, []).append(c)
    allocations = allocate_all(by_vip, {})
    assert allocations == whole.allocations
    assert {k: v for ref in by_vip for k, v in vips_of(ref, by_vip[ref], allocations).items()} == whole.vips


def test_same_inputs_same_bytes():
    tasks = [task(f"t.{i}", [f"/svc{i % 4}:80"], ips=[f"9.0.1.{i}", f"fd01:b::{i}"]) for i in range(1, 12)]
    forward, backward = derive(*tasks), derive(*reversed(tasks))
    assert orjson.dumps(as_json(forward)) == orjson.dumps(as_json(backward))
    assert list(forward.vips) == list(backward.vips)


def test_a_full_range_is_reported_and_costs_only_the_newcomer():
    tiny = {4: ipaddress.ip_network("10.9.9.0/30"), 6: ipaddress.ip_network("fd01:c::/64")}  # 2 usable IPv4
    tasks = {t.id: t for t in (task("a.1", ["/a:80"]), task("b.1", ["/b:80"]), task("c.1", ["/c:80"]))}
    derived = derive_vips(tasks, AGENTS, FRAMEWORKS, None, tiny)
    assert sorted(v.name for v in derived.vips.values()) == ["/a", "/b"]  # placed in sorted order
    assert derived.rejections == [Rejection("", "", "/c (marathon)", "no free IPv4 address left in 10.9.9.0/30")]
