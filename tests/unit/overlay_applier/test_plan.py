"""Plans are exact: the smallest list of operations, updates before deletions, and no
deletion before the role is complete."""

from __future__ import annotations

import dataclasses

from appliers.overlay.model import Nat, NodeState, desired_state
from appliers.overlay.plan import (AddAddress, AddRule, CreateVtep, DeleteAddress, DeleteFdb, DeleteNat,
                                   DeleteNeighbour, DeleteRoute, DeleteRule, DeleteVtep, RemoveConfig, ReplaceFdb,
                                   ReplaceNat, ReplaceNeighbour, ReplaceRoute, SetVtep, WriteConfig, plan_files,
                                   plan_kernel)
from tests.unit.overlay_applier.leases import lease

ME = "10.99.0.1"
TWO = desired_state([lease(1), lease(2)], ME)
THREE = desired_state([lease(1), lease(2), lease(3)], ME)


def test_an_empty_kernel_gets_everything_in_order():
    assert plan_kernel(TWO, NodeState(), may_remove=False) == [
        CreateVtep(TWO.vtep),
        AddAddress("44.128.0.1/20"),
        AddRule("9.0.0.0/8", 42),
        ReplaceNeighbour("44.128.0.2", "70:b3:d5:80:00:02"),
        ReplaceFdb("70:b3:d5:80:00:02", "10.99.0.2"),
        ReplaceRoute(42, "10.99.0.2/32", "44.128.0.2"),
        ReplaceRoute(254, "9.0.1.0/24", "44.128.0.2"),
        ReplaceNat(Nat(frozenset({"9.0.0.0/24"}), frozenset({"9.0.0.0/8"}))),
    ]


def test_a_converged_kernel_needs_nothing():
    assert plan_kernel(THREE, THREE, may_remove=True) == []


def test_a_peer_added():
    assert plan_kernel(THREE, TWO, may_remove=True) == [
        ReplaceNeighbour("44.128.0.3", "70:b3:d5:80:00:03"),
        ReplaceFdb("70:b3:d5:80:00:03", "10.99.0.3"),
        ReplaceRoute(42, "10.99.0.3/32", "44.128.0.3"),
        ReplaceRoute(254, "9.0.2.0/24", "44.128.0.3"),
    ]  # the masquerade names the overlay's network: a peer does not change it


def test_a_peer_changed_is_replaced_in_place():
    changed = desired_state([lease(1), lease(2), lease(3, vtep_mac="70:b3:d5:80:00:33")], ME)
    assert plan_kernel(changed, THREE, may_remove=True) == [
        ReplaceNeighbour("44.128.0.3", "70:b3:d5:80:00:33"),
        ReplaceFdb("70:b3:d5:80:00:33", "10.99.0.3"),
        DeleteFdb("70:b3:d5:80:00:03", "10.99.0.3"),
    ]


def test_a_peer_removed_goes_from_every_table_once_complete():
    assert plan_kernel(TWO, THREE, may_remove=True) == [
        DeleteRoute(42, "10.99.0.3/32"),
        DeleteRoute(254, "9.0.2.0/24"),
        DeleteFdb("70:b3:d5:80:00:03", "10.99.0.3"),
        DeleteNeighbour("44.128.0.3"),
    ]


def test_nothing_is_removed_before_complete():
    assert plan_kernel(TWO, THREE, may_remove=False) == []
    assert plan_kernel(NodeState(), THREE, may_remove=False) == []
    changed = desired_state([lease(1), lease(2), lease(3, vtep_mac="70:b3:d5:80:00:33")], ME)
    assert plan_kernel(changed, THREE, may_remove=False) == [
        ReplaceNeighbour("44.128.0.3", "70:b3:d5:80:00:33"), ReplaceFdb("70:b3:d5:80:00:33", "10.99.0.3")]


def test_the_masquerade_sets_keep_the_kernel_s_networks_before_complete():
    extra = dataclasses.replace(TWO, nat=Nat(TWO.nat.sources, TWO.nat.overlay | {"10.7.0.0/16"}))
    assert plan_kernel(TWO, extra, may_remove=False) == []
    assert plan_kernel(TWO, extra, may_remove=True) == [ReplaceNat(TWO.nat)]
    broken = dataclasses.replace(TWO, nat=Nat(TWO.nat.sources, TWO.nat.overlay, intact=False))
    assert plan_kernel(TWO, broken, may_remove=False) == [ReplaceNat(TWO.nat)]


def test_an_upgraded_processor_s_network_replaces_the_subnets_it_covers_even_before_complete():
    legacy = desired_state([lease(1, legacy=True), lease(2, legacy=True), lease(3, legacy=True)], ME)
    assert legacy.nat.overlay == {"9.0.0.0/24", "9.0.1.0/24", "9.0.2.0/24"}
    # An interval set refuses 9.0.1.0/24 next to 9.0.0.0/8: the kernel's subnets kept are those outside.
    assert plan_kernel(THREE, legacy, may_remove=False) == [
        AddRule("9.0.0.0/8", 42), ReplaceNat(Nat(frozenset({"9.0.0.0/24"}), frozenset({"9.0.0.0/8"})))]
    assert plan_kernel(THREE, legacy, may_remove=True) == [
        AddRule("9.0.0.0/8", 42), ReplaceNat(THREE.nat), DeleteRule("9.0.0.0/24", 42)]


def test_the_device_s_mac_mtu_or_state_are_set_in_place_its_tunnel_recreated():
    down = dataclasses.replace(THREE, vtep=dataclasses.replace(THREE.vtep, up=False, mtu=1450))
    assert plan_kernel(THREE, down, may_remove=False) == [SetVtep(THREE.vtep)]
    moved = dataclasses.replace(THREE, vtep=dataclasses.replace(THREE.vtep, local="10.99.0.77"))
    plan = plan_kernel(THREE, moved, may_remove=False)
    assert plan[:3] == [DeleteVtep("vtep1024"), CreateVtep(THREE.vtep), AddAddress("44.128.0.1/20")]
    assert len(plan) == 3 + 2 + 2 + 4  # everything on the device again; the rule and NAT stay


def test_own_lease_gone_removes_everything_once_complete():
    assert plan_kernel(NodeState(), THREE, may_remove=True) == [
        DeleteRule("9.0.0.0/8", 42), DeleteNat(), DeleteVtep("vtep1024")]


def test_drift_a_stray_address_and_rule_are_removed():
    routes = {key: via for key, via in THREE.routes.items() if key != (254, "9.0.1.0/24")}
    drifted = dataclasses.replace(THREE, addresses=THREE.addresses | {"44.128.0.9/20"},
                                  rules=THREE.rules | {("9.0.9.0/24", 42)}, routes=routes)
    assert plan_kernel(THREE, drifted, may_remove=True) == [
        ReplaceRoute(254, "9.0.1.0/24", "44.128.0.2"), DeleteRule("9.0.9.0/24", 42), DeleteAddress("44.128.0.9/20")]


def test_config_files():
    assert plan_files({"dcos.conflist": b"new"}, {"dcos.conflist": b"old", "old.conflist": b"x"}, False) == [
        WriteConfig("dcos.conflist", b"new")]
    assert plan_files({"dcos.conflist": b"new"}, {"dcos.conflist": b"new", "old.conflist": b"x"}, True) == [
        RemoveConfig("old.conflist")]
