"""The desired kernel state of one node among three, exactly as dcos-net programs it."""

from __future__ import annotations

from msgspec import structs

from appliers.overlay.model import Nat, NodeState, Vtep, desired_state, own_leases, without_covered
from tests.unit.overlay_applier.leases import lease


def test_node_one_of_three_programs_its_vtep_and_both_peers():
    state = desired_state([lease(1), lease(2), lease(3)], "10.99.0.1")
    assert state == NodeState(
        vtep=Vtep(local="10.99.0.1", mac="70:b3:d5:80:00:01", mtu=1500, up=True, name="vtep1024", vni=1024,
                  port=64000, learning=True),
        addresses=frozenset({"44.128.0.1/20"}),
        neighbours={"44.128.0.2": "70:b3:d5:80:00:02", "44.128.0.3": "70:b3:d5:80:00:03"},
        fdb={"70:b3:d5:80:00:02": "10.99.0.2", "70:b3:d5:80:00:03": "10.99.0.3"},
        routes={(254, "9.0.1.0/24"): "44.128.0.2", (254, "9.0.2.0/24"): "44.128.0.3",
                (42, "10.99.0.2/32"): "44.128.0.2", (42, "10.99.0.3/32"): "44.128.0.3"},
        rules=frozenset({("9.0.0.0/8", 42)}),  # DC/OS's rule: the overlay's whole network
        nat=Nat(frozenset({"9.0.0.0/24"}), frozenset({"9.0.0.0/8"})),  # one element, whatever the peers
    )


def test_ipv6_adds_the_vtep_address_the_peer_neighbour_and_the_80_route_only():
    leases = [lease(n, ipv6=True) for n in (1, 2)] + [lease(n, "dcos6", ipv6=True) for n in (1, 2)]
    state = desired_state(leases, "10.99.0.2")
    assert state.addresses == {"44.128.0.2/20", "fd01:a::2/64"}
    assert state.neighbours == {"44.128.0.1": "70:b3:d5:80:00:01", "fd01:a::1": "70:b3:d5:80:00:01"}
    assert state.fdb == {"70:b3:d5:80:00:01": "10.99.0.1"}  # one per peer: the underlay is IPv4
    assert state.routes == {(254, "9.0.0.0/24"): "44.128.0.1", (254, "fd01:b:0:0:1::/80"): "fd01:a::1",
                            (42, "10.99.0.1/32"): "44.128.0.1"}
    assert state.rules == {("9.0.0.0/8", 42)}  # IPv4 only, as dcos-net
    assert state.nat == Nat(frozenset({"9.0.1.0/24", "fd01:b:0:0:2::/80"}), frozenset({"9.0.0.0/8", "fd01:b::/64"}))


def test_an_ipv6_subnet_of_a_peer_without_an_ipv6_vtep_gets_no_route():
    state = desired_state([lease(1), lease(2), lease(2, "dcos6")], "10.99.0.1")
    assert (254, "fd01:b:0:0:2::/80") not in state.routes and "fd01:a::2" not in state.neighbours


def test_without_a_lease_of_its_own_the_node_wants_nothing():
    assert desired_state([lease(2), lease(3)], "10.99.0.1") == NodeState()


def test_a_gone_agent_stays_a_peer_until_its_lease_is_deleted():
    state = desired_state([lease(1), lease(2, gone_since=100.0)], "10.99.0.1")
    assert state.neighbours == {"44.128.0.2": "70:b3:d5:80:00:02"}


def test_when_an_old_and_a_new_agent_share_our_ip_the_live_one_is_ours():
    old = lease(1, gone_since=5.0)
    new = type(old)(**{**{f: getattr(old, f) for f in old.__struct_fields__}, "agent_id": "agent-1b",
                       "subnet": "9.0.9.0/24", "gone_since": None})
    assert [x.agent_id for x in own_leases([old, new], "10.99.0.1")] == ["agent-1b"]
    state = desired_state([old, new, lease(2)], "10.99.0.1")
    assert state.rules == {("9.0.0.0/8", 42)} and set(state.neighbours) == {"44.128.0.2"}
    assert state.nat.sources == {"9.0.9.0/24"}


def test_leases_of_an_older_processor_stand_for_their_subnets():
    leases = [lease(n, legacy=True) for n in (1, 2, 3)]
    state = desired_state(leases, "10.99.0.1")
    assert state.rules == {("9.0.0.0/24", 42)}
    assert state.nat == Nat(frozenset({"9.0.0.0/24"}), frozenset({"9.0.0.0/24", "9.0.1.0/24", "9.0.2.0/24"}))
    # Mixed, while processors are upgraded: a subnet inside a listed network is left out.
    mixed = desired_state([lease(1), lease(2, legacy=True), lease(3, "tiny", legacy=True)], "10.99.0.1")
    assert mixed.nat.overlay == {"9.0.0.0/8"} and mixed.rules == {("9.0.0.0/8", 42)}
    outside = structs.replace(lease(4, legacy=True), subnet="10.7.0.0/24")
    assert desired_state([lease(1), outside], "10.99.0.1").nat.overlay == {"9.0.0.0/8", "10.7.0.0/24"}


def test_without_covered_keeps_the_widest_and_leaves_adjacent_networks_apart():
    assert without_covered(["9.0.1.0/24", "9.0.0.0/8", "9.0.0.0/24", "10.0.0.0/24", "10.0.1.0/24",
                            "fd01:b:0:0:2::/80", "fd01:b::/64", "9.0.0.0/8"]) == {
        "9.0.0.0/8", "10.0.0.0/24", "10.0.1.0/24", "fd01:b::/64"}
    assert without_covered([]) == frozenset()
