"""The Mesos observer: snapshots, events, failover protection, history and rejections."""

import time

import orjson
import pytest

from producers.mesos.normalize import master_of
from producers.mesos.observer import MesosObserver
from producers.mesos.snapshot import parse_master_state
from producers.problems import InputRejected
from producers.publisher import Publisher
from runtime.tables import MemorySink
from schemas.headers import Observation
from tests.scenarios.mesos_fixtures import FIXTURES, observe

LEADER = master_of("10.0.0.1:5050")
AGENT = "A-S0"
FRAMEWORK = "F-0001"


def new_observer(actual=None):
    sink = MemorySink()
    tables = {alias: {} for alias in ("cluster", "agents", "frameworks", "tasks")}
    tables.update(actual or {})
    publisher = Publisher(sink, "mesos", tables)
    return sink, MesosObserver(publisher, [], recovery_grace=10.0, recovery_timeout=600.0)


def agent(agent_id=AGENT, host="10.0.1.1"):
    return {"agent_info": {"id": {"value": agent_id}, "hostname": host, "port": 5051}, "active": True, "pid": f"slave(1)@{host}:5051"}


def task(task_id, state="TASK_RUNNING", agent_id=AGENT, labels=None):
    return {
        "task_id": {"value": task_id},
        "name": "web",
        "framework_id": {"value": FRAMEWORK},
        "agent_id": {"value": agent_id},
        "state": state,
        "statuses": [{"task_id": {"value": task_id}, "state": state, "timestamp": 100.0}],
        "labels": labels if labels is not None else {"labels": [{"key": "team", "value": "edge"}]},
    }


def subscribed(agents=(), tasks=(), recovered=()):
    return {
        "type": "SUBSCRIBED",
        "subscribed": {
            "get_state": {
                "get_agents": {"agents": list(agents), "recovered_agents": [{"id": {"value": r}, "hostname": "h"} for r in recovered]},
                "get_frameworks": {"frameworks": [{"framework_info": {"id": {"value": FRAMEWORK}, "name": "marathon", "hostname": "10.0.0.2"}, "active": True}]},
                "get_tasks": {"tasks": list(tasks)},
            },
            "heartbeat_interval_seconds": 15,
        },
    }


def update(task_id, state, healthy=None):
    status = {"task_id": {"value": task_id}, "state": state, "timestamp": 200.0}
    if healthy is not None:
        status["healthy"] = healthy
    return {"type": "TASK_UPDATED", "task_updated": {"framework_id": {"value": FRAMEWORK}, "status": status, "state": state}}


def key(task_id: str) -> str:
    """The tasks topic key of one of FRAMEWORK's tasks."""
    return f"{FRAMEWORK}/{task_id}"


def feed(observer, *events, now=1000.0):
    for event in events:
        observer.on_event(event, LEADER, now, Observation.now())


def events_of(sink):
    return [(key, orjson.loads(value)["kind"]) for key, value in sink.log("wayfinder.events")]


def rejections_of(sink):
    return [orjson.loads(value) for _, value in sink.log("wayfinder.rejections")]


def test_operator_api_stream_keeps_container_addresses_and_port_mappings():
    sink, _ = observe(FIXTURES / "mesos-operator-api" / "operator-api.json")
    tasks = {k: orjson.loads(v) for k, v in sink.table("wayfinder.mesos.tasks").items()}
    ipv6 = tasks["30257977-0153-499d-a5b0-35afd842ef4d-0001/docker-on-ipv6.602453f2-28e7-11e8-8cba-70b3d5800001"]
    assert ipv6["statuses"][-1]["network_infos"][0]["ip_addresses"] == ["172.19.0.2", "fd01:b::2:8000:0:2"]
    assert ipv6["container"]["network_names"] == ["dcos6"]
    bridge = tasks["30257977-0153-499d-a5b0-35afd842ef4d-0001/ucr-on-bridge.1458805d-2630-11e8-af52-70b3d5800001"]
    assert bridge["container"]["port_mappings"] == [{"host_port": 15263, "container_port": 8080, "protocol": "tcp"}]
    assert bridge["discovery"]["ports"] == [{"number": 15263, "protocol": "tcp", "name": "http", "labels": {"network-scope": "host"}}]
    agents = {k: orjson.loads(v) for k, v in sink.table("wayfinder.mesos.agents").items()}
    assert {a["hostname"]: a["ip"] for a in agents.values()} == {"172.17.0.4": "172.17.0.4", "172.17.0.3": "172.17.0.3"}


def test_legacy_master_state_takes_addresses_from_pids():
    snapshot, leader, problems = parse_master_state((FIXTURES / "mesos-state" / "state6.json").read_bytes())
    assert (leader.hostname, leader.ip, leader.port) == ("192.168.65.90", "192.168.65.90", 5050)
    calico = snapshot.frameworks["10172a79-151f-4bd3-aeec-9ef367a7ddcc-0003"]
    assert (calico.name, calico.ip, calico.port) == ("calico", "192.168.65.111", 45788)
    node = snapshot.tasks["10172a79-151f-4bd3-aeec-9ef367a7ddcc-0003/RunCalicoNode-B3213DE4-9AA5-4DF2-8FCD-3AC63C9C9209"]
    assert (node.agent_id, node.framework_id, node.state) == ("10172a79-151f-4bd3-aeec-9ef367a7ddcc-S1", calico.id, "TASK_RUNNING")
    assert node.statuses[-1].network_infos[0].ip_addresses == ["192.168.65.111"]
    assert problems.found == []


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"// exported from a browser\n{\"leader\": \"master@1.2.3.4:5050\"}", "starts with // comment lines"),
        (b'{"slaves": [], "frameworks": []}', "names no leader"),
        (b'{"leader": "master@1.2.3.4:5050", ', "malformed JSON"),
    ],
)
def test_unusable_master_states_are_refused_with_a_reason(body, why):
    with pytest.raises(InputRejected) as refused:
        parse_master_state(body)
    assert refused.value.what == "master-state"
    assert why in refused.value.why
    assert refused.value.excerpt == body[:200].decode()


def test_kill_publishes_killing_then_tombstone_with_history():
    sink, observer = new_observer()
    feed(observer, subscribed([agent()], [task("t1")]))
    sink.records.clear()
    feed(observer, update("t1", "TASK_KILLING"), update("t1", "TASK_KILLED"))
    tasks_log = sink.log("wayfinder.mesos.tasks")
    assert [key for key, _ in tasks_log] == [key("t1"), key("t1")]
    assert orjson.loads(tasks_log[0][1])["state"] == "TASK_KILLING"
    assert tasks_log[1][1] is None
    assert events_of(sink) == [(key("t1"), "task_killing"), (key("t1"), "task_killed")]
    assert key("t1") not in observer.tasks


def test_health_flip_is_a_history_record():
    sink, observer = new_observer()
    feed(observer, subscribed([agent()], [task("t1")]))
    sink.records.clear()
    feed(observer, update("t1", "TASK_RUNNING", healthy=False))
    assert events_of(sink) == [(key("t1"), "task_health_changed")]
    assert orjson.loads(sink.table("wayfinder.mesos.tasks")[key("t1")])["healthy"] is False


def test_restart_with_unchanged_cluster_publishes_nothing():
    first, observer = new_observer()
    feed(observer, subscribed([agent()], [task("t1"), task("t2")]))
    actual = {alias: first.table(f"wayfinder.mesos.{alias}") for alias in ("cluster", "agents", "frameworks", "tasks")}
    second, restarted = new_observer(actual)
    feed(restarted, subscribed([agent()], [task("t1"), task("t2")]))
    assert second.records == []


def test_snapshot_prunes_what_the_cluster_no_longer_has():
    first, observer = new_observer()
    feed(observer, subscribed([agent()], [task("t1"), task("t2")]))
    actual = {alias: first.table(f"wayfinder.mesos.{alias}") for alias in ("cluster", "agents", "frameworks", "tasks")}
    second, restarted = new_observer(actual)
    feed(restarted, subscribed([agent()], [task("t1")]))
    assert second.log("wayfinder.mesos.tasks") == [(key("t2"), None)]
    assert events_of(second) == [(key("t2"), "task_removed")]


def test_recovered_agent_keeps_its_tasks_until_it_settles():
    first, observer = new_observer()
    feed(observer, subscribed([agent(), agent("A-S1", "10.0.1.2")], [task("t1"), task("t2"), task("t3", agent_id="A-S1")]))
    actual = {alias: first.table(f"wayfinder.mesos.{alias}") for alias in ("cluster", "agents", "frameworks", "tasks")}

    # A new leader: agent S0 is only "recovered", so t1 and t2 are missing from its snapshot.
    sink, failover = new_observer(actual)
    feed(failover, subscribed([agent("A-S1", "10.0.1.2")], [task("t3", agent_id="A-S1")], recovered=[AGENT]), now=1000.0)
    assert sink.records == []
    failover.on_tick(1005.0, Observation.now())
    assert sink.records == []

    # S0 re-registers and re-announces t1 only; after the grace period t2 is pruned.
    feed(failover, {"type": "AGENT_ADDED", "agent_added": {"agent": agent()}}, {"type": "TASK_ADDED", "task_added": {"task": task("t1")}}, now=1010.0)
    assert sink.records == []
    failover.on_tick(1015.0, Observation.now())
    assert sink.records == []
    failover.on_tick(1020.5, Observation.now())
    assert sink.log("wayfinder.mesos.tasks") == [(key("t2"), None)]


def test_recovered_agent_that_never_returns_is_removed_after_the_timeout():
    first, observer = new_observer()
    feed(observer, subscribed([agent()], [task("t1")]))
    actual = {alias: first.table(f"wayfinder.mesos.{alias}") for alias in ("cluster", "agents", "frameworks", "tasks")}
    sink, failover = new_observer(actual)
    feed(failover, subscribed([], [], recovered=[AGENT]), now=1000.0)
    failover.on_tick(1599.0, Observation.now())
    assert sink.records == []
    failover.on_tick(1600.0, Observation.now())
    assert sink.log("wayfinder.mesos.tasks") == [(key("t1"), None)]
    assert sink.log("wayfinder.mesos.agents") == [(AGENT, None)]


def test_bad_events_are_rejected_and_the_rest_still_applies():
    sink, observer = new_observer()
    feed(
        observer,
        subscribed([agent()], []),
        {"type": "TASK_TELEPORTED", "task_teleported": {}},
        {"type": "TASK_ADDED", "task_added": {"task": {"name": "no ids"}}},
        update("ghost", "TASK_RUNNING"),
        {"type": "TASK_ADDED", "task_added": {"task": task("t1", labels={"labels": [{"key": "ok", "value": "1"}, {"value": "no key"}]})}},
    )
    rejected = rejections_of(sink)
    assert [(r["what"], r["why"]) for r in rejected] == [
        ("event", "unknown event type 'TASK_TELEPORTED'"),
        ("task", "a task needs an id, an agent id, a framework id and a state"),
        ("event", "status update for task 'ghost' of framework 'F-0001' that was never announced"),
        ("labels", "task t1: label without a string key and value"),
    ]
    assert all(r["source"] == "mesos" for r in rejected)
    assert orjson.loads(sink.table("wayfinder.mesos.tasks")[key("t1")])["labels"] == {"ok": "1"}


def test_agent_removal_removes_its_tasks():
    sink, observer = new_observer()
    feed(observer, subscribed([agent()], [task("t1")]))
    sink.records.clear()
    feed(observer, {"type": "AGENT_REMOVED", "agent_removed": {"agent_id": {"value": AGENT}}})
    assert sink.log("wayfinder.mesos.tasks") == [(key("t1"), None)]
    assert sink.log("wayfinder.mesos.agents") == [(AGENT, None)]
    assert events_of(sink) == [(key("t1"), "task_removed"), (AGENT, "agent_removed")]


def test_every_record_carries_schema_trace_and_observed_time():
    sink, observer = new_observer()
    before = time.time_ns()
    feed(observer, subscribed([agent()], [task("t1")]))
    for topic, _, _, headers in sink.records:
        found = dict(headers)
        assert found["wf-schema"].startswith(b"wayfinder.")
        assert len(found["wf-trace"]) == 16
        assert int(found["wf-observed-ns"]) >= before
    schemas = {topic: dict(headers)["wf-schema"] for topic, _, _, headers in sink.records}
    assert schemas["wayfinder.mesos.tasks"] == b"wayfinder.mesos.Task/1"
    assert schemas["wayfinder.events"] == b"wayfinder.history.ChangeEvent/1"
