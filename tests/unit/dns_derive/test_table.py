"""DnsTable: incremental record sets equal the whole derivation, and changes are minimal."""

from hypothesis import given, settings
from hypothesis import strategies as st

import processors.dns.table as table_module
from processors.dns.config import DnsConfig
from processors.dns.derive import derive_records
from processors.dns.table import DnsTable
from schemas.mesos import Cluster, Master
from tests.unit.dns_derive.entities import AGENT, FRAMEWORK, Discovery, DiscoveryPort, PortRange, replace, running, task
from tests.unit.dns_derive.synthetic import measure

OTHER_AGENT = replace(AGENT, id="a-S4", hostname="10.0.0.4", ip="10.0.0.4")
M1 = Master(hostname="10.0.0.1", ip="10.0.0.1")


def loaded(*tasks) -> DnsTable:
    table = DnsTable()
    table.put_agent(AGENT.id, AGENT)
    table.put_agent(OTHER_AGENT.id, OTHER_AGENT)
    table.put_framework(FRAMEWORK.id, FRAMEWORK)
    for one in tasks:
        table.put_task(one.id, one)
    return table


def test_many_tasks_share_a_name_and_the_last_one_tombstones_it():
    web1, web2 = task(id="web.1"), task(id="web.2", agent=OTHER_AGENT)
    table = loaded(web1)
    changes = table.put_task(web2.id, web2)
    assert changes["web.marathon.mesos./A"].rdata == ["10.0.0.3", "10.0.0.4"]
    assert changes["web.marathon.mesos./A"].tasks == ["web.1", "web.2"]
    assert changes["web.marathon.mesos.thisdcos.directory./A"].rdata == ["10.0.0.3", "10.0.0.4"]
    assert "slave.mesos./A" not in changes  # agents did not change
    changes = table.put_task(web1.id, replace(web1, state="TASK_KILLED"))
    assert changes["web.marathon.mesos./A"].rdata == ["10.0.0.4"]
    assert all(value is None for key, value in changes.items() if "-s3." in key)  # web.1's own names
    changes = table.put_task(web2.id, None)
    assert changes["web.marathon.mesos./A"] is None
    assert changes["web.marathon.mesos.thisdcos.directory./A"] is None
    assert not any(key.startswith(("web", "_web")) for key in table.records)


def test_a_repeated_or_invisible_change_changes_nothing():
    web = task(id="web.1", ips=("9.0.0.1",))
    table = loaded(web)
    assert table.put_task(web.id, web) == {}
    # a new status with the same addresses: same names, same values
    assert table.put_task(web.id, replace(web, statuses=[running("9.0.0.1", timestamp=5.0)])) == {}
    assert table.put_task("never-seen", None) == {}


def test_one_task_change_touches_only_its_own_names():
    table = loaded(*(task(id=f"web.{n}", ips=(f"9.0.0.{n}",)) for n in range(50)))
    before = dict(table.records)
    changes = table.put_task("web.7", replace(task(id="web.7", ips=("9.0.0.7",)), state="TASK_FAILED"))
    own = {key for key, value in before.items() if "web.7" in value.tasks}
    assert set(changes) == own
    shared = [key for key in own if len(before[key].tasks) > 1]
    assert shared and all("web.7" not in table.records[key].tasks for key in shared)


def test_agent_change_rederives_only_the_tasks_on_it(monkeypatch):
    tasks = [task(id=f"a.{n}") for n in range(3)] + [task(id=f"b.{n}", agent=OTHER_AGENT) for n in range(4)]
    table = loaded(*tasks)
    seen = []
    real = table_module.task_records
    monkeypatch.setattr(table_module, "task_records", lambda t, *rest: seen.append(t.id) or real(t, *rest))
    changes = table.put_agent(OTHER_AGENT.id, replace(OTHER_AGENT, ip="10.0.0.44"))
    assert sorted(seen) == [f"b.{n}" for n in range(4)]
    assert changes["slave.mesos./A"].rdata == ["10.0.0.3", "10.0.0.44"]
    assert changes["web.marathon.slave.mesos./A"].rdata == ["10.0.0.3", "10.0.0.44"]  # a.* and b.* share it
    seen.clear()
    table.put_framework(FRAMEWORK.id, replace(FRAMEWORK, name="marathon.prod"))
    assert len(seen) == 7
    assert "web.marathon.prod.mesos./A" in table.records and "web.marathon.mesos./A" not in table.records


def test_tasks_wait_for_their_agent_and_framework():
    table = DnsTable()
    web = task(id="web.1")
    assert table.put_task(web.id, web) == {}
    assert table.put_framework(FRAMEWORK.id, FRAMEWORK).keys() >= {"marathon.mesos./A"}
    changes = table.put_agent(AGENT.id, AGENT)
    assert changes["web.marathon.mesos./A"].rdata == ["10.0.0.3"]
    changes = table.put_agent(AGENT.id, None)
    assert changes["web.marathon.mesos./A"] is None and changes["slave.mesos./A"] is None


def test_rejections_are_taken_once():
    table = loaded()
    table.put_task("x", task("$$$", id="x"))
    taken = table.take_rejections()
    assert [r.value for r in taken] == ["$$$", "$$$ (marathon)"]
    assert table.take_rejections() == []
    table.put_task("x", replace(task("$$$", id="x"), statuses=[running("9.0.0.9")]))
    assert table.take_rejections() == []  # the same refusal again is not news
    assert table.rejections[("task", "x")] == tuple(taken)
    table.put_task("x", None)
    assert ("task", "x") not in table.rejections


def test_cold_rebuild_of_a_synthetic_cluster():
    result = measure(2000, 20, 4, 10)
    assert result["record_sets"] > 2000
    # one task killed: its own names (and the shared sets it was in), not the table
    assert 0 < result["record_sets_changed_by_it"] <= 40


# -- the incremental table against the whole derivation, under random updates -------------

AGENTS = {
    AGENT.id: [AGENT, replace(AGENT, ip="10.0.0.33"), replace(AGENT, ip=None, hostname="agent.example")],
    OTHER_AGENT.id: [OTHER_AGENT, replace(OTHER_AGENT, ip="fd00::4")],
}
FRAMEWORKS = {
    FRAMEWORK.id: [FRAMEWORK, replace(FRAMEWORK, name="marathon.prod"), replace(FRAMEWORK, port=None)],
    "fw-2": [replace(FRAMEWORK, id="fw-2", port=15102), replace(FRAMEWORK, id="fw-2", name="metronome", ip=None)],
}
CLUSTERS = {"cluster": [Cluster(leader=M1, masters=[M1]), Cluster(leader=M1, masters=[M1, Master(hostname="10.0.0.2", ip="10.0.0.2")])]}


def task_variants(task_id: str) -> list:
    base = task("web", id=task_id, ips=("9.0.0.1",), port_ranges=[PortRange(31000, 31000)])
    return [
        base,
        replace(base, agent_id=OTHER_AGENT.id),
        replace(base, framework_id="fw-2"),
        replace(base, state="TASK_KILLING"),
        replace(base, statuses=[running("9.0.0.2", "fd01:b::2")]),
        replace(base, name="api.group", discovery=Discovery(name="api.group", ports=[DiscoveryPort(80, "tcp", "http")])),
        replace(base, agent_id="unknown-agent"),
    ]


TASKS = {task_id: task_variants(task_id) for task_id in ("t1", "t2", "t3", "t4")}
POOLS = {"task": TASKS, "agent": AGENTS, "framework": FRAMEWORKS, "cluster": CLUSTERS}


@st.composite
def updates(draw):
    kind = draw(st.sampled_from(sorted(POOLS)))
    key = draw(st.sampled_from(sorted(POOLS[kind])))
    value = draw(st.one_of(st.none(), st.sampled_from(POOLS[kind][key])))
    return kind, key, value


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.lists(st.lists(updates(), min_size=1, max_size=4), max_size=25), st.sampled_from([DnsConfig(), DnsConfig(ip_sources=("netinfo", "host"), ip_merge="first", legacy_discovery_names=False)]))
def test_incremental_equals_whole_derivation(batches, config):
    table = DnsTable(config)
    replica: dict = {}
    state: dict[str, dict] = {kind: {} for kind in POOLS}
    for batch in batches:
        if len(batch) > 1:
            changes, causes = table.apply_batch(batch)
            assert set(causes) == set(changes) and all(0 <= index < len(batch) for index in causes.values())
        else:
            changes = getattr(table, f"put_{batch[0][0]}")(*batch[0][1:])
        for kind, key, value in batch:
            if value is None:
                state[kind].pop(key, None)
            else:
                state[kind][key] = value
        for key, value in changes.items():
            assert value is None or replica.get(key) != value  # only real changes are reported
            if value is None:
                replica.pop(key)
            else:
                replica[key] = value
        assert replica == table.records
    whole = derive_records(state["task"], state["agent"], state["framework"], state["cluster"], config)
    assert table.records == whole.records
    assert sorted(r for found in table.rejections.values() for r in found) == whole.rejections
