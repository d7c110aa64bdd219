"""`wayfinder overlay`: the topic's view of this node next to its kernel."""

from __future__ import annotations

import dataclasses

from appliers.overlay.inspect import as_lines, compare
from appliers.overlay.model import NodeState, desired_state
from tests.unit.overlay_applier.leases import lease

LEASES = [lease(1), lease(2), lease(3, gone_since=50.0)]


def test_a_converged_kernel_reads_ok_everywhere():
    report = compare(LEASES, "10.99.0.1", desired_state(LEASES, "10.99.0.1"))
    assert [p["programmed"] for p in report["peers"]] == [True, True] and report["vtep"]["programmed"]
    assert report["peers"][0]["wanted"] == {
        "neighbours": {"44.128.0.2": "70:b3:d5:80:00:02"}, "fdb": {"70:b3:d5:80:00:02": "10.99.0.2"},
        "routes": {"10.99.0.2/32 table 42": "44.128.0.2", "9.0.1.0/24": "44.128.0.2"}}
    lines = as_lines(report)
    assert lines[0].startswith("ok   node 10.99.0.1  topic: vtep1024 local 10.99.0.1 70:b3:d5:80:00:01 mtu 1500")
    assert lines[1] == "     lease dcos 9.0.0.0/24 (mesos 9.0.0.0/25, docker 9.0.0.128/25, mtu 1420)"
    assert lines[-1] == ("ok   peer agent-3 10.99.0.3 (agent gone) vtep 44.128.0.3 70:b3:d5:80:00:03"
                         "  10.99.0.3/32 table 42 via 44.128.0.3 9.0.2.0/24 via 44.128.0.3")


def test_what_the_kernel_lacks_or_has_extra_is_marked():
    state = desired_state(LEASES, "10.99.0.1")
    routes = {k: v for k, v in state.routes.items() if k != (254, "9.0.1.0/24")}
    drifted = dataclasses.replace(state, routes={**routes, (254, "9.0.9.0/24"): "44.128.0.9"})
    lines = as_lines(compare(LEASES, "10.99.0.1", drifted))
    assert any(line.startswith("DIFF peer agent-2") and line.endswith("kernel lacks: routes 9.0.1.0/24") for line in lines)
    assert "DIFF unexpected route 9.0.9.0/24 (no lease asks for it)" in lines
    assert as_lines(compare(LEASES, "10.99.0.1", NodeState()))[0].startswith("DIFF node 10.99.0.1")
