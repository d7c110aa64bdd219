"""A pass over a few changed leases reads back and plans only the entries those peers touch:
exact operations, no other peer read or removed, and the same kernel a full pass would make."""

from __future__ import annotations

import dataclasses

from msgspec import structs

from appliers.overlay.fake import FakeKernel
from appliers.overlay.model import desired_state
from appliers.overlay.plan import (AddNatOverlay, DeleteFdb, DeleteNatOverlay, DeleteNeighbour, DeleteRoute,
                                   ReplaceFdb, ReplaceNeighbour, ReplaceRoute)
from appliers.overlay.role import OverlayRole
from runtime.reconcile import Scope
from schemas.overlay import lease_key
from tests.unit.overlay_applier.leases import lease, table

ME = "10.99.0.1"


def run_pass(role: OverlayRole, leases: dict, keys=None, may_remove: bool = True):
    """One observe-plan-apply pass as the loop runs it; the kernel operations applied."""
    scope = Scope(None if keys is None else frozenset(keys), may_remove)
    plan = role.plan(leases, role.observe(scope), scope)
    if plan:
        role.apply(plan)
    return plan.kernel if plan else []


def started(*leases) -> tuple[OverlayRole, FakeKernel, dict]:
    kernel = FakeKernel()
    role = OverlayRole(kernel, ME)
    current = table(*leases)
    run_pass(role, current)
    return role, kernel, current


def test_a_peer_added_reads_and_programs_only_its_entries():
    role, kernel, current = started(lease(1), lease(2), lease(3))
    current[lease_key("dcos", "agent-4")] = lease(4)
    assert run_pass(role, current, ["dcos/agent-4"]) == [
        ReplaceNeighbour("44.128.0.4", "70:b3:d5:80:00:04"),
        ReplaceFdb("70:b3:d5:80:00:04", "10.99.0.4"),
        ReplaceRoute(42, "10.99.0.4/32", "44.128.0.4"),
        ReplaceRoute(254, "9.0.3.0/24", "44.128.0.4"),
    ]  # no masquerade element: the set holds 9.0.0.0/8 whatever the peers
    assert (kernel.reads, kernel.partial_reads, role.partial_passes) == (1, 1, 1)
    assert kernel.state == desired_state(current.values(), ME)


def test_leases_of_an_older_processor_change_the_masquerade_by_element():
    role, kernel, current = started(*(lease(n, legacy=True) for n in (1, 2, 3)))
    current[lease_key("dcos", "agent-4")] = lease(4, legacy=True)
    assert run_pass(role, current, ["dcos/agent-4"])[-1] == AddNatOverlay(("9.0.3.0/24",))
    del current[lease_key("dcos", "agent-3")]
    assert run_pass(role, current, ["dcos/agent-3"])[-1] == DeleteNatOverlay(("9.0.2.0/24",))
    assert role.partial_passes == 2 and kernel.state == desired_state(current.values(), ME)


def test_a_change_of_the_overlay_networks_takes_a_full_pass():
    role, kernel, current = started(*(lease(n, legacy=True) for n in (1, 2, 3)))
    current[lease_key("dcos", "agent-2")] = lease(2)  # the first lease of an upgraded processor
    run_pass(role, current, ["dcos/agent-2"])
    assert (kernel.reads, kernel.partial_reads, role.partial_passes) == (2, 0, 0)
    assert kernel.state.nat.overlay == {"9.0.0.0/8"} and kernel.state == desired_state(current.values(), ME)
    current[lease_key("dcos", "agent-4")] = lease(4, legacy=True)  # covered by 9.0.0.0/8: nothing to add
    assert run_pass(role, current, ["dcos/agent-4"])[-1] == ReplaceRoute(254, "9.0.3.0/24", "44.128.0.4")
    assert role.partial_passes == 1 and kernel.state == desired_state(current.values(), ME)


def test_a_peer_changed_is_replaced_in_place():
    role, kernel, current = started(lease(1), lease(2), lease(3))
    current[lease_key("dcos", "agent-3")] = lease(3, vtep_mac="70:b3:d5:80:00:33")
    assert run_pass(role, current, ["dcos/agent-3"]) == [
        ReplaceNeighbour("44.128.0.3", "70:b3:d5:80:00:33"),
        ReplaceFdb("70:b3:d5:80:00:33", "10.99.0.3"),
        DeleteFdb("70:b3:d5:80:00:03", "10.99.0.3"),
    ]
    assert kernel.state == desired_state(current.values(), ME)


def test_a_peer_removed_goes_and_no_other_peer_is_removed():
    role, kernel, current = started(lease(1), lease(2), lease(3))
    # Drift the table does not explain (a peer 9 programmed by hand): only a full pass removes it.
    kernel.state.neighbours["44.128.0.9"] = "70:b3:d5:80:00:09"
    kernel.state.routes[(254, "9.0.8.0/24")] = "44.128.0.9"
    del current[lease_key("dcos", "agent-3")]
    assert run_pass(role, current, ["dcos/agent-3"]) == [
        DeleteRoute(42, "10.99.0.3/32"),
        DeleteRoute(254, "9.0.2.0/24"),
        DeleteFdb("70:b3:d5:80:00:03", "10.99.0.3"),
        DeleteNeighbour("44.128.0.3"),
    ]
    assert "44.128.0.2" in kernel.state.neighbours and "44.128.0.9" in kernel.state.neighbours
    run_pass(role, current)  # the full pass (resync) repairs the drift
    assert kernel.state == desired_state(current.values(), ME)


def test_a_partial_pass_removes_nothing_before_complete():
    role, kernel, current = started(lease(1), lease(2), lease(3))
    del current[lease_key("dcos", "agent-3")]
    assert run_pass(role, current, ["dcos/agent-3"], may_remove=False) == []
    assert "44.128.0.3" in kernel.state.neighbours


def test_a_republished_lease_changes_nothing():
    role, kernel, current = started(lease(1), lease(2), lease(3))
    current[lease_key("dcos", "agent-2")] = structs.replace(lease(2), gone_since=1.0)
    assert run_pass(role, current, ["dcos/agent-2"]) == []


def test_a_vtep_ip_handed_from_one_peer_to_another_matches_the_full_plan():
    role, kernel, current = started(lease(1), lease(2), lease(3))
    del current[lease_key("dcos", "agent-3")]
    heir = structs.replace(lease(4), vtep_ip="44.128.0.3", vtep_mac="70:b3:d5:80:00:03")
    current[lease_key("dcos", "agent-4")] = heir
    run_pass(role, current, ["dcos/agent-3", "dcos/agent-4"])
    assert kernel.state == desired_state(current.values(), ME)


def test_a_change_of_the_node_s_own_lease_takes_a_full_pass():
    role, kernel, current = started(lease(1), lease(2))
    current[lease_key("dcos", "agent-1")] = lease(1, vtep_mac="70:b3:d5:80:00:11")
    run_pass(role, current, ["dcos/agent-1"])
    assert (kernel.reads, kernel.partial_reads, role.partial_passes) == (2, 0, 0)
    assert kernel.state == desired_state(current.values(), ME)


def test_a_missing_device_takes_a_full_pass():
    role, kernel, current = started(lease(1), lease(2))
    kernel.state = dataclasses.replace(kernel.state, vtep=None, neighbours={}, fdb={}, routes={})
    current[lease_key("dcos", "agent-3")] = lease(3)
    run_pass(role, current, ["dcos/agent-3"])
    assert kernel.reads == 2 and kernel.state == desired_state(current.values(), ME)


def test_ipv6_peers_partially():
    role, kernel, current = started(lease(1, ipv6=True), lease(1, "dcos6", ipv6=True), lease(2, ipv6=True))
    current.update(table(lease(3, ipv6=True), lease(3, "dcos6", ipv6=True)))
    run_pass(role, current, ["dcos/agent-3", "dcos6/agent-3"])
    assert role.partial_passes == 1 and kernel.state == desired_state(current.values(), ME)
    del current["dcos6/agent-3"]
    run_pass(role, current, ["dcos6/agent-3"])
    assert role.partial_passes == 2 and kernel.state == desired_state(current.values(), ME)


def test_the_applied_route_of_a_lease_as_of_the_last_pass():
    role, kernel, current = started(lease(1), lease(2))
    assert role.index.main_route("dcos/agent-2") == ("9.0.1.0/24", "44.128.0.2")
    assert role.index.main_route("dcos/agent-1") is None  # this node's own
    assert role.index.main_route("dcos/agent-3") is None
    current[lease_key("dcos", "agent-3")] = lease(3)
    run_pass(role, current, ["dcos/agent-3"])
    assert role.index.main_route("dcos/agent-3") == ("9.0.2.0/24", "44.128.0.3")
    assert kernel.state.routes[(254, "9.0.2.0/24")] == "44.128.0.3"
