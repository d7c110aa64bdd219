"""Whatever agents come, go, return, are freed by hand and whatever time passes: no two
agents ever hold the same subnet or VTEP address, every lease stays where it was given while
it lives, and a replay from the published table changes nothing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.overlay.config import parse_config
from processors.overlay.table import LeaseTable
from tests.unit.overlay.leases import agent, arrive, free_by_hand, leave, placed

# Small ranges, so that exhaustion and reuse happen often: 4 subnets per overlay, 6 VTEPs.
CONFIG = parse_config(["a=10.99.0.0/27,29", "b=fd00:99::/123,125"], vtep="44.128.0.0/29", vtep6="fd01:a::/125",
                      grace_s=10)
STEPS = st.lists(st.one_of(
    st.tuples(st.just("arrive"), st.integers(1, 8)),
    st.tuples(st.just("leave"), st.integers(1, 8)),
    st.tuples(st.just("tick"), st.integers(0, 15)),
    st.tuples(st.just("free"), st.integers(1, 8), st.sampled_from("ab")),
), max_size=40)


def assert_unique(table: LeaseTable) -> None:
    for overlay in ("a", "b"):
        subnets = [lease.subnet for lease in table.records.values() if lease.overlay == overlay]
        assert len(subnets) == len(set(subnets))
    vteps = {lease.agent_id: (lease.vtep_ip, lease.vtep_ip6) for lease in table.records.values()}
    for agent_id, (v4, v6) in vteps.items():
        assert all((lease.vtep_ip, lease.vtep_ip6) == (v4, v6) for lease in table.records.values() if lease.agent_id == agent_id)
    assert len({v4 for v4, _ in vteps.values()}) == len(vteps) == len({v6 for _, v6 in vteps.values()})


@settings(max_examples=300, deadline=None)
@given(STEPS)
def test_no_two_agents_ever_share_a_subnet_or_a_vtep(steps):
    table = LeaseTable(CONFIG)
    now = 0.0
    for step in steps:
        before = placed(table)
        if step[0] == "arrive":
            arrive(table, agent(step[1]), at=now)
        elif step[0] == "leave":
            leave(table, f"S{step[1]}", at=now)
        elif step[0] == "tick":
            now += step[1]
            table.tick(now)
        else:
            free_by_hand(table, f"{step[2]}/S{step[1]}")
        assert_unique(table)
        for key, (subnet, vtep, vtep6, _) in placed(table).items():  # a lease never moves
            if key in before:
                assert before[key][:3] == (subnet, vtep, vtep6)
        replayed = LeaseTable(CONFIG, table.records.values())
        assert replayed.take_refusals() == [] and replayed.records == table.records
