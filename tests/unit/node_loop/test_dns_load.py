"""The dns role's start-up load through the reconcile loop, and its full-pass plan: one swap
of the RRsets themselves, nothing copied when the zones already serve the target, the
builder and the collector only for the load (bench/dns_cold_start.py measures the rest)."""

from __future__ import annotations

import gc

from appliers.dns.records import RRset, record
from appliers.dns.role import VIP_KEY_PREFIX, DnsRole, Wanted, plan_zones, rrset_in
from appliers.dns.zone import NOERROR, ZoneSet
from appliers.options import NodeOptions
from runtime.kafka.fake_follower import FakeFollower
from runtime.reconcile import ProcessorReady, ReconcileLoop, Scope
from schemas import codec
from schemas.catalog import Catalog
from schemas.dns import RecordSet, record_set_key
from tests.unit.node_loop.running import eventually, running

OWN = {("thisnode.thisdcos.directory.", "A"): RRset.of([record("thisnode.thisdcos.directory.", "A", 5, "10.0.0.9")])}
ALL, ALL_MAY_REMOVE = Scope(None, False), Scope(None, True)


def rrset(name: str, *addresses: str, kind: str = "A") -> RRset:
    return RRset.of([record(name, kind, 60, address) for address in addresses])


def sets(count: int) -> list[RecordSet]:
    return [RecordSet(f"app{i}.marathon.mesos.", "A", 60, [f"10.0.{i // 250}.{i % 250 + 1}"]) for i in range(count)]


def desired_of(*rrsets: RRset) -> dict[str, RRset]:
    return {record_set_key(r.name, r.type): r for r in rrsets}


def served(zones: ZoneSet) -> dict:
    return {where: tuple(r.rdatas) for where, r in zones.rrsets()}


def test_the_first_full_pass_swaps_in_the_rrsets_themselves():
    web, db = rrset("web.marathon.mesos.", "10.0.1.5"), rrset("db.marathon.mesos.", "10.0.1.9")
    desired = {**desired_of(web, db), "none.marathon.mesos./A": Wanted(None)}
    for scope in (ALL, ALL_MAY_REMOVE):
        plan = plan_zones(desired, {}, scope, OWN)
        assert plan.swap == [*OWN.values(), web, db] and plan.swap[1] is web


def test_a_full_pass_over_zones_that_serve_the_target_plans_nothing():
    zones = ZoneSet()
    web, db = rrset("web.marathon.mesos.", "10.0.1.5"), rrset("db.marathon.mesos.", "10.0.1.9")
    desired = desired_of(web, db)
    zones.replace_sets([*OWN.values(), web, db])
    for scope in (ALL, ALL_MAY_REMOVE):
        assert not plan_zones(desired, zones.fed(), scope, OWN)
    # An equal RRset (not the same object) is no change either.
    assert not plan_zones(desired_of(web, rrset("db.marathon.mesos.", "10.0.1.9")), zones.fed(), ALL_MAY_REMOVE, OWN)


def test_a_full_pass_removes_only_once_allowed_and_keeps_what_it_may_not_remove():
    zones = ZoneSet()
    web, old = rrset("web.marathon.mesos.", "10.0.1.5"), rrset("old.marathon.mesos.", "10.0.1.7")
    zones.replace_sets([*OWN.values(), web, old])
    assert not plan_zones(desired_of(web), zones.fed(), ALL, OWN)  # old stays before complete
    changed = rrset("web.marathon.mesos.", "10.0.1.6")
    plan = plan_zones(desired_of(changed), zones.fed(), ALL, OWN)
    assert sorted((r.name, r.rdatas) for r in plan.swap) == [
        ("old.marathon.mesos.", ("10.0.1.7",)), ("thisnode.thisdcos.directory.", ("10.0.0.9",)),
        ("web.marathon.mesos.", ("10.0.1.6",))]
    plan = plan_zones(desired_of(web), zones.fed(), ALL_MAY_REMOVE, OWN)
    assert plan.swap == [*OWN.values(), web]
    # A valid set with no value is served as absent: removed once allowed, kept before.
    no_value = {**desired_of(web), record_set_key(old.name, "A"): Wanted(None)}
    assert not plan_zones(no_value, zones.fed(), ALL, OWN)
    assert plan_zones(no_value, zones.fed(), ALL_MAY_REMOVE, OWN).swap == [*OWN.values(), web]


def test_entries_sharing_a_name_and_type_give_the_last_one_as_before():
    # A fed VIP name that is also a table name, and an own name that the table has too.
    vip = rrset("shop.marathon.l4lb.thisdcos.directory.", "11.1.0.3")
    table = rrset("shop.marathon.l4lb.thisdcos.directory.", "11.1.0.4")
    own_twin = rrset("thisnode.thisdcos.directory.", "10.9.9.9")
    desired = {**desired_of(table, own_twin), f"{VIP_KEY_PREFIX}{vip.name}/A": vip}
    plan = plan_zones(desired, {}, ALL_MAY_REMOVE, OWN)
    assert sorted((r.name, r.rdatas) for r in plan.swap) == [
        (vip.name, ("11.1.0.3",)), ("thisnode.thisdcos.directory.", ("10.9.9.9",))]
    zones = ZoneSet()
    zones.replace_sets(plan.swap)
    assert not plan_zones(desired, zones.fed(), ALL_MAY_REMOVE, OWN)
    zones.upsert("extra.marathon.mesos.", "A", rrset("extra.marathon.mesos.", "10.0.0.1"))
    assert not plan_zones(desired, zones.fed(), ALL, OWN)
    assert len(plan_zones(desired, zones.fed(), ALL_MAY_REMOVE, OWN).swap) == 2


def test_the_zones_read_in_place_are_what_callers_fed_in():
    zones = ZoneSet()
    web = rrset("web.marathon.mesos.", "10.0.1.5")
    zones.replace_sets([web, *OWN.values()])
    fed = zones.fed()
    assert dict(fed.items()) == dict(zones.rrsets()) and len(fed) == 2
    assert fed[("web.marathon.mesos.", "A")] is web
    for hidden in (("mesos.", "SOA"), ("mesos.", "NS"), ("ready.spartan.", "A"), ("nope.mesos.", "A")):
        assert hidden not in fed and fed.get(hidden) is None
    zones.remove("web.marathon.mesos.", "A")
    assert len(fed) == 1 and ("web.marathon.mesos.", "A") not in fed


async def test_a_start_past_a_ready_mark_loads_in_one_full_pass_with_the_collector_held():
    role = DnsRole(NodeOptions("unused:9092", Catalog(), "test", "10.0.0.9", roles=("dns",)), listen=False)
    follower = FakeFollower("dns")
    for record_set in sets(500):
        follower.publish(record_set_key(record_set.name, "A"), codec.encode(record_set))
    loop = ReconcileLoop(role, follower, ProcessorReady(True), poll_interval=0.01, resync_interval=None)
    scopes, collecting = [], []
    observe = role.observe

    def watched(scope):
        scopes.append(scope)
        collecting.append(gc.isenabled())
        return observe(scope)

    role.observe = watched
    enabled = gc.isenabled()
    async with running(loop):
        await eventually(loop.ready.is_set)
        assert scopes == [Scope(None, True)]  # complete already: no second full pass
        assert collecting == [False] and gc.isenabled() == enabled
        assert role._builder is None  # the load's cache of values is gone
        assert loop.role.zones.lookup("app499.marathon.mesos.", "A").rcode == NOERROR
        assert all(type(entry) is not Wanted for entry in loop.desired.values())  # RRsets alone
        follower.publish(record_set_key("app1.marathon.mesos.", "A"),
                         codec.encode(RecordSet("app1.marathon.mesos.", "A", 60, ["10.9.0.1"])))
        await eventually(lambda: [r.rdata for r in loop.role.zones.lookup("app1.marathon.mesos.", "A").answers]
                         == ["10.9.0.1"])
    gc.unfreeze()


def test_the_http_api_keeps_the_topic_bytes_and_a_set_with_no_value_is_kept_as_absent():
    options = NodeOptions("unused:9092", Catalog(), "test", "10.0.0.9", roles=("dns",), dns_http=("127.0.0.1", 0))
    role = DnsRole(options, listen=False)
    web = RecordSet("web.marathon.mesos.", "A", 60, ["10.0.1.5"])
    raw = codec.encode(web)
    entry = role.decode(record_set_key(web.name, "A"), raw)
    assert entry.raw == raw and rrset_in(entry) == rrset("web.marathon.mesos.", "10.0.1.5")
    plain = DnsRole(NodeOptions("unused:9092", Catalog(), "test", "10.0.0.9", roles=("dns",)), listen=False)
    empty = RecordSet("none.marathon.mesos.", "A", 60, [])
    assert plain.decode(record_set_key(empty.name, "A"), codec.encode(empty)) == Wanted(None)
    assert type(plain.decode(record_set_key(web.name, "A"), raw)) is not Wanted
