"""The incremental VIP table gives the same records as the whole derivation, in any input order."""

import random

import pytest

from processors.l4lb.derive import derive_vips
from processors.l4lb.table import VipTable
from tests.scenarios.mesos_fixtures import FIXTURES, observe

FIXTURES_WITH_VIPS = [
    FIXTURES / "mesos-operator-api" / name
    for name in ("vip-labels.json", "tcp-and-udp.json", "unhealthy.json", "hello-overlay.json", "operator-api.json")
] + [FIXTURES / "mesos-state" / name for name in ("bad-state-gaal.json", "state7.json", "two-healthcheck-free-vips-state.json")]


def entities(fixture):
    _, publisher = observe(fixture)
    return tuple(dict(publisher.tables[alias].items()) for alias in ("tasks", "agents", "frameworks"))


@pytest.mark.parametrize("fixture", FIXTURES_WITH_VIPS, ids=lambda p: p.stem)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_arrival_order_gives_the_whole_derivation(fixture, seed):
    tasks, agents, frameworks = entities(fixture)
    expected = derive_vips(tasks, agents, frameworks)
    # Start from the allocations a previous run published, as the processor does on restart.
    table = VipTable(expected.allocations)
    inputs = [("task", k, v) for k, v in tasks.items()] + [("agent", k, v) for k, v in agents.items()] + [
        ("framework", k, v) for k, v in frameworks.items()
    ]
    random.Random(seed).shuffle(inputs)
    applied = {}
    for kind, key, entity in inputs:
        applied.update(getattr(table, f"put_{kind}")(key, entity))
    assert table.records == expected.vips
    assert {k: v for k, v in applied.items() if v is not None} == expected.vips


def test_removals_and_agent_changes_update_only_what_they_touch():
    tasks, agents, frameworks = entities(FIXTURES / "mesos-operator-api" / "tcp-and-udp.json")
    table = VipTable()
    for key, agent in agents.items():
        table.put_agent(key, agent)
    for key, framework in frameworks.items():
        table.put_framework(key, framework)
    for key, task in tasks.items():
        table.put_task(key, task)
    keys = sorted(table.records)
    assert [k.split("/")[0] for k in keys] == ["tcp", "udp"]
    (task_id,) = tasks
    assert table.put_task(task_id, None) == {keys[0]: None, keys[1]: None}
    assert table.records == {}
    assert table.allocations[4] == {}
    # The task comes back before its agent: nothing until the agent is known again.
    (agent_id,) = agents
    table.put_agent(agent_id, None)
    assert table.put_task(task_id, tasks[task_id]) == {}
    changes = table.put_agent(agent_id, agents[agent_id])
    assert sorted(changes) == keys
