"""Property: however the changes are cut into batches, the incremental VIP table ends equal to
the whole derivation of the final entities, and the changes it reported rebuild that table.

The entities are drawn from small pools so the hard cases come up often: two tasks offering
one ip:port (the higher weight, then the smaller task id, wins), IPv4 and IPv6 backends of
one named VIP, an IP VIP that gets only its own family, tasks that drain (TASK_KILLING) or wait
for a health result, agents and frameworks that vanish and return.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.l4lb.derive import derive_vips
from processors.l4lb.table import VipTable
from schemas.mesos import Agent, Discovery, DiscoveryPort, Framework, NetworkInfo, Task, TaskStatus

AGENT_IDS = ["S0", "S1"]
FRAMEWORK_IDS = ["F0", "F1"]
TASK_IDS = [f"t{n}" for n in range(8)]
VIPS = ["/web:80", "/web:80", "/db:5432", "10.9.0.1:80", "[fd00::9]:80"]
CONTAINER_IPS = ["172.17.0.2", "172.17.0.3", "fd01:b::2"]

agents = st.builds(lambda index, has_ip: Agent(id=AGENT_IDS[index], hostname=f"agent{index}",
                                                ip=f"10.1.0.{index + 1}" if has_ip else None),
                   st.integers(0, len(AGENT_IDS) - 1), st.booleans())
frameworks = st.builds(lambda index, name: Framework(id=FRAMEWORK_IDS[index], name=name),
                       st.integers(0, len(FRAMEWORK_IDS) - 1), st.sampled_from(["marathon", "other"]))


@st.composite
def tasks(draw) -> Task:
    task_id = draw(st.sampled_from(TASK_IDS))
    ports = [DiscoveryPort(number=draw(st.sampled_from([8080, 8080, 8081])),
                           protocol=draw(st.sampled_from(["tcp", "tcp", "udp"])),
                           labels={"VIP_0": draw(st.sampled_from(VIPS)),
                                   "network-scope": draw(st.sampled_from(["host", "host", "container"]))})
             for _ in range(draw(st.integers(1, 2)))]
    ips = draw(st.lists(st.sampled_from(CONTAINER_IPS), min_size=1, max_size=2, unique=True))
    return Task(
        id=task_id, name="app", framework_id=draw(st.sampled_from(FRAMEWORK_IDS)),
        agent_id=draw(st.sampled_from(AGENT_IDS)),
        state=draw(st.sampled_from(["TASK_RUNNING", "TASK_RUNNING", "TASK_KILLING", "TASK_STAGING"])),
        statuses=[TaskStatus("TASK_RUNNING", 1.0, network_infos=[NetworkInfo(ip_addresses=ips)])],
        healthy=draw(st.sampled_from([None, True, False])), health_check=draw(st.booleans()),
        discovery=Discovery(name="app", ports=ports))


updates = st.one_of(
    st.tuples(st.just("task"), tasks()).map(lambda u: ("task", u[1].id, u[1])),
    st.sampled_from(TASK_IDS).map(lambda task_id: ("task", task_id, None)),
    agents.map(lambda agent: ("agent", agent.id, agent)),
    st.sampled_from(AGENT_IDS).map(lambda agent_id: ("agent", agent_id, None)),
    frameworks.map(lambda framework: ("framework", framework.id, framework)),
)


# Every agent (with an IP) and framework known first: otherwise most tasks just wait for theirs.
KNOWN = [("agent", agent_id, Agent(id=agent_id, hostname=agent_id, ip=f"10.1.0.{n + 1}"))
         for n, agent_id in enumerate(AGENT_IDS)] + [("framework", framework_id, Framework(id=framework_id, name="marathon"))
                                                     for framework_id in FRAMEWORK_IDS]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(updates, min_size=5, max_size=60), st.lists(st.integers(1, 8), min_size=1, max_size=20))
def test_any_cut_into_batches_ends_in_the_whole_derivation(drawn, cuts):
    history = KNOWN + drawn
    table = VipTable()
    published: dict = {}
    final: dict[str, dict] = {"task": {}, "agent": {}, "framework": {}}
    start = 0
    for size in cuts * (len(history) // max(1, sum(cuts)) + 1):
        batch = history[start:start + size]
        if not batch:
            break
        start += size
        changes, causes = table.apply_batch(batch)
        assert set(causes) == set(changes)
        for key, value in changes.items():
            if value is None:
                published.pop(key, None)
            else:
                published[key] = value
        for kind, key, value in batch:
            if value is None:
                final[kind].pop(key, None)
            else:
                final[kind][key] = value
    expected = derive_vips(final["task"], final["agent"], final["framework"], table.allocations)
    assert table.records == expected.vips
    assert published == expected.vips
