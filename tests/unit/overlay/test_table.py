"""The lease table (processors/overlay/table.py): exact leases in order of arrival, IPv6, the
grace period, replays from the published table, exhaustion, conflicts and hand-freed leases."""

from __future__ import annotations

from processors.overlay.config import parse_config
from processors.overlay.table import LeaseTable
from schemas.overlay import Lease
from tests.unit.overlay.leases import DEFAULT, V4_ONLY, agent, arrive, free_by_hand, leave, placed


def test_agents_in_order_get_the_lowest_subnets_halves_and_vteps():
    table = LeaseTable(DEFAULT)
    changes = arrive(table, agent(1), agent(2), agent(3))
    assert changes["dcos/S1"] == Lease(
        overlay="dcos", agent_id="S1", agent_ip="10.0.0.1", subnet="9.0.0.0/24", mesos_subnet="9.0.0.0/25",
        docker_subnet="9.0.0.128/25", vtep_ip="44.128.0.1", vtep_prefix=20, vtep_mac="70:b3:d5:80:00:01", mtu=1420,
        vtep_ip6="fd01:a::1", vtep_prefix6=64, network="9.0.0.0/8")
    assert changes["dcos6/S1"].network == "fd01:b::/64"
    assert [(changes[f"dcos/S{n}"].subnet, changes[f"dcos/S{n}"].mesos_subnet, changes[f"dcos/S{n}"].docker_subnet,
             changes[f"dcos/S{n}"].vtep_ip, changes[f"dcos/S{n}"].vtep_mac) for n in (2, 3)] == [
        ("9.0.1.0/24", "9.0.1.0/25", "9.0.1.128/25", "44.128.0.2", "70:b3:d5:80:00:02"),
        ("9.0.2.0/24", "9.0.2.0/25", "9.0.2.128/25", "44.128.0.3", "70:b3:d5:80:00:03"),
    ]
    assert set(changes) == {f"{overlay}/S{n}" for overlay in ("dcos", "dcos6") for n in (1, 2, 3)}


def test_a_lease_published_before_the_network_field_gets_it_and_keeps_its_place():
    first = LeaseTable(DEFAULT)
    arrive(first, agent(1), agent(2))
    older = [Lease(**{**{name: getattr(lease, name) for name in Lease.__struct_fields__}, "network": None})
             for lease in first.records.values()]
    again = LeaseTable(DEFAULT, older)
    assert again.records == first.records and not again.take_refusals()


def test_an_ipv6_overlay_leases_a_80_per_agent_with_81_halves():
    table = LeaseTable(DEFAULT)
    arrive(table, agent(1), agent(2), agent(3))
    assert [(table.records[f"dcos6/S{n}"].subnet, table.records[f"dcos6/S{n}"].mesos_subnet,
             table.records[f"dcos6/S{n}"].docker_subnet, table.records[f"dcos6/S{n}"].vtep_ip6) for n in (1, 2, 3)] == [
        ("fd01:b::/80", "fd01:b::/81", "fd01:b::8000:0:0/81", "fd01:a::1"),
        ("fd01:b:0:0:1::/80", "fd01:b:0:0:1::/81", "fd01:b::1:8000:0:0/81", "fd01:a::2"),
        ("fd01:b:0:0:2::/80", "fd01:b:0:0:2::/81", "fd01:b::2:8000:0:0/81", "fd01:a::3"),
    ]
    # one VTEP per agent, the same in every overlay's lease
    assert table.records["dcos6/S2"].vtep_ip == table.records["dcos/S2"].vtep_ip == "44.128.0.2"


def test_the_mac_carries_the_low_24_bits_of_the_vtep_address():
    table = LeaseTable(V4_ONLY)
    arrive(table, *(agent(n) for n in range(1, 300)))
    assert (table.records["dcos/S256"].vtep_ip, table.records["dcos/S256"].vtep_mac) == ("44.128.1.0", "70:b3:d5:80:01:00")
    assert table.records["dcos/S299"].subnet == "9.1.42.0/24"
    assert table.records["dcos/S1"].vtep_ip6 is None and table.records["dcos/S1"].vtep_prefix6 is None


def test_a_changed_agent_record_keeps_its_lease_with_the_new_ip():
    table = LeaseTable(V4_ONLY)
    arrive(table, agent(1), agent(2))
    changes = arrive(table, agent(1, ip="10.1.1.1"))
    assert list(changes) == ["dcos/S1"] and changes["dcos/S1"].agent_ip == "10.1.1.1"
    assert changes["dcos/S1"].subnet == "9.0.0.0/24"
    assert arrive(table, agent(1, ip="10.1.1.1")) == {}  # the same record again changes nothing


def test_an_agent_without_ip_gets_no_lease_and_one_rejection():
    table = LeaseTable(V4_ONLY)
    assert arrive(table, agent(1, ip=None)) == {}
    arrive(table, agent(1, ip=None))
    assert [(what, why) for what, why, _ in table.take_refusals()] == [
        ("agent S1", "agent host-1 has no IP address: no overlay lease")]
    assert arrive(table, agent(1))["dcos/S1"].subnet == "9.0.0.0/24"


def test_a_gone_agent_keeps_its_lease_for_the_grace_and_back_within_it_keeps_it():
    table = LeaseTable(DEFAULT)
    arrive(table, agent(1), agent(2))
    changes = leave(table, "S1", at=1000.0)
    assert {key: lease.gone_since for key, lease in changes.items()} == {"dcos/S1": 1000.0, "dcos6/S1": 1000.0}
    assert table.tick(1599.0) == {}
    arrive(table, agent(3), at=1599.0)  # S1's subnet is not free while it is in its grace
    assert table.records["dcos/S3"].subnet == "9.0.2.0/24"
    changes = arrive(table, agent(1), at=1599.5)
    assert {key: lease.gone_since for key, lease in changes.items()} == {"dcos/S1": None, "dcos6/S1": None}
    assert table.records["dcos/S1"].subnet == "9.0.0.0/24" and table.tick(5000.0) == {}


def test_after_the_grace_the_lease_is_freed_and_the_next_agent_gets_it():
    table = LeaseTable(DEFAULT)
    arrive(table, agent(1), agent(2))
    leave(table, "S1", at=1000.0)
    leave(table, "S1", at=1300.0)  # a repeated tombstone does not restart the grace
    assert table.tick(1600.0) == {"dcos/S1": None, "dcos6/S1": None}
    assert "S1" not in table.departed
    changes = arrive(table, agent(4))
    assert (changes["dcos/S4"].subnet, changes["dcos/S4"].vtep_ip, changes["dcos6/S4"].subnet) == (
        "9.0.0.0/24", "44.128.0.1", "fd01:b::/80")
    # S1 back after its grace: a new lease, the lowest free
    assert arrive(table, agent(1))["dcos/S1"].subnet == "9.0.2.0/24"


def test_a_replay_from_the_published_table_keeps_every_lease():
    table = LeaseTable(DEFAULT)
    arrive(table, *(agent(n) for n in range(1, 6)))
    leave(table, "S2", at=50.0)
    table.tick(700.0)  # S2 freed
    arrive(table, agent(6))  # takes S2's place
    leave(table, "S4", at=800.0)
    published = list(table.records.values())
    replayed = LeaseTable(DEFAULT, published)
    assert replayed.take_refusals() == []
    arrive(replayed, *(agent(n) for n in (6, 5, 3, 1)))  # another order, S4 gone
    assert placed(replayed) == placed(table)
    assert replayed.tick(1000.0) == {} and replayed.tick(1400.0) == {"dcos/S4": None, "dcos6/S4": None}
    assert arrive(replayed, agent(7))["dcos/S7"].subnet == "9.0.3.0/24"


def test_a_published_lease_whose_agent_is_never_seen_counts_as_gone_from_the_first_tick():
    table = LeaseTable(V4_ONLY)
    arrive(table, agent(1), agent(2))
    replayed = LeaseTable(V4_ONLY, table.records.values())
    arrive(replayed, agent(2))
    assert {key: lease.gone_since for key, lease in replayed.tick(100.0).items()} == {"dcos/S1": 100.0}
    assert replayed.tick(700.0) == {"dcos/S1": None}


def test_an_exhausted_overlay_rejects_the_newcomer_and_leases_it_once_a_subnet_is_freed():
    config = parse_config(["tiny=10.99.0.0/28,29"], vtep6="", grace_s=10)
    table = LeaseTable(config)
    arrive(table, agent(1), agent(2), agent(3))
    assert [table.records[f"tiny/S{n}"].subnet for n in (1, 2)] == ["10.99.0.0/29", "10.99.0.8/29"]
    assert "tiny/S3" not in table.records
    assert table.records["tiny/S2"].mesos_subnet == "10.99.0.8/30"
    assert [(what, why) for what, why, _ in table.take_refusals()] == [(
        "overlay lease tiny/S3", "overlay tiny is exhausted: all 2 /29 subnets of 10.99.0.0/28 are leased; agent S3 "
        "gets one once a lease is freed")]
    arrive(table, agent(3))
    assert table.take_refusals() == []  # reported once
    leave(table, "S1", at=100.0)
    changes = table.tick(110.0)
    assert changes["tiny/S1"] is None and changes["tiny/S3"].subnet == "10.99.0.0/29"
    assert table.records["tiny/S2"].subnet == "10.99.0.8/29"


def test_an_exhausted_vtep_range_rejects_the_agent_and_others_keep_theirs():
    table = LeaseTable(parse_config(["dcos=9.0.0.0/8,24"], vtep="44.128.0.0/30", vtep6=""))
    arrive(table, agent(1), agent(2), agent(3))
    assert sorted(table.records) == ["dcos/S1", "dcos/S2"]
    assert [why for _, why, _ in table.take_refusals()] == [
        "the VTEP range 44.128.0.0/30 is exhausted: all 2 addresses are held; no overlay lease until one is freed"]


def test_a_lease_freed_by_hand_is_forgotten_if_its_agent_is_gone():
    table = LeaseTable(DEFAULT)
    arrive(table, agent(1), agent(2))
    leave(table, "S1", at=10.0)
    assert free_by_hand(table, "dcos/S1") == {}  # the topic already holds the tombstone
    assert "dcos/S1" not in table.records and "S1" in table.departed  # its dcos6 lease is still in its grace
    free_by_hand(table, "dcos6/S1")
    assert "S1" not in table.departed and table.tick(10_000.0) == {}
    changes = arrive(table, agent(3))
    assert (changes["dcos/S3"].subnet, changes["dcos/S3"].vtep_ip) == ("9.0.0.0/24", "44.128.0.1")
    assert free_by_hand(table, "dcos/nobody") == {}


def test_a_lease_freed_by_hand_while_its_agent_is_registered_is_published_again():
    table = LeaseTable(V4_ONLY)
    arrive(table, agent(1))
    lease = table.records["dcos/S1"]
    assert free_by_hand(table, "dcos/S1") == {"dcos/S1": lease}
    assert "registered" in table.take_refusals()[0][1]


def test_published_leases_that_conflict_or_do_not_fit_are_refused_and_the_rest_kept():
    table = LeaseTable(DEFAULT)
    arrive(table, agent(1), agent(2), agent(3))
    good = table.records
    published = [
        good["dcos/S1"], good["dcos6/S1"],
        Lease(**{**_fields(good["dcos/S2"]), "subnet": "9.0.0.0/24"}),  # S1's subnet
        Lease(**{**_fields(good["dcos/S3"]), "subnet": "10.0.0.0/24"}),  # not in 9.0.0.0/8
        Lease(**{**_fields(good["dcos/S3"]), "overlay": "gone"}),  # no such overlay
        Lease(**{**_fields(good["dcos6/S3"]), "vtep_ip": "44.128.0.1", "vtep_ip6": "fd01:a::3"}),  # S1's VTEP
    ]
    seeded = LeaseTable(DEFAULT, published)
    refusals = sorted(what for what, _, _ in seeded.take_refusals())
    assert refusals == ["VTEP of agent S3", "overlay lease dcos/S2", "overlay lease dcos/S3", "overlay lease gone/S3"]
    assert seeded.records["dcos6/S3"].vtep_ip == "44.128.0.2"  # the lowest free, its subnet kept
    arrive(seeded, agent(1), agent(2), agent(3))
    assert placed(seeded)["dcos/S1"][0] == "9.0.0.0/24"
    assert {seeded.records["dcos/S2"].subnet, seeded.records["dcos/S3"].subnet} == {"9.0.1.0/24", "9.0.2.0/24"}


def _fields(lease: Lease) -> dict:
    return {name: getattr(lease, name) for name in lease.__struct_fields__}
