"""The dns role in the reconcile loop, against its zones (no server) and a fake follower; and
the node's declared dependency: a VIP's name only after the l4lb role's kernel has the VIP."""

from __future__ import annotations

from appliers.dns.role import DnsRole
from appliers.dns.zone import NOERROR, NXDOMAIN, SERVFAIL
from appliers.l4lb.fake import FakeKernel
from appliers.l4lb.role import L4lbRole
from appliers.node import wire
from appliers.options import NodeOptions
from runtime.kafka.fake_follower import FakeFollower
from runtime.reconcile import ProcessorReady, ReconcileLoop
from schemas import codec
from schemas.catalog import Catalog
from schemas.dns import RecordSet, record_set_key
from schemas.l4lb import Backend, Vip
from tests.unit.node_loop.running import eventually, running

WEB_A = RecordSet("web.marathon.mesos.", "A", 60, ["10.0.1.5", "10.0.1.6"], "marathon", ["web.1", "web.2"])
DB_A = RecordSet("db.marathon.mesos.", "A", 60, ["10.0.1.9"], "marathon", ["db.1"])
NAMED = Vip("tcp", "11.1.0.3", 80, [Backend("10.0.1.5", 31000, 1, "web.1")], name="/shop/web",
            framework="marathon", dns="shopweb.marathon.l4lb.thisdcos.directory")


def publish(follower: FakeFollower, *sets: RecordSet) -> None:
    for record_set in sets:
        follower.publish(record_set_key(record_set.name, record_set.type), codec.encode(record_set))


def dns_loop(gate: ProcessorReady, **settings):
    role = DnsRole(NodeOptions("unused:9092", Catalog(), "test", "10.0.0.9", roles=("dns",)), listen=False)
    follower = FakeFollower("dns")
    return ReconcileLoop(role, follower, gate, poll_interval=0.01, resync_interval=None, **settings), follower


def refusing_l4lb(gate: ProcessorReady) -> tuple[FakeKernel, FakeFollower, ReconcileLoop]:
    """An l4lb loop whose kernel refuses everything for now (set `fail_next = 0` to let it
    in), following a vips table that holds the named VIP NAMED."""
    kernel = FakeKernel()
    kernel.fail_next = 10**6
    vips = FakeFollower("vips")
    vips.publish("tcp/11.1.0.3/80", codec.encode(NAMED))
    return kernel, vips, ReconcileLoop(L4lbRole(kernel), vips, gate, poll_interval=0.01, retry_interval=0.05)


def answer(loop: ReconcileLoop, name: str, kind: str = "A") -> tuple[int, list[str]]:
    found = loop.role.zones.lookup(name, kind)
    return found.rcode, sorted(f"{r.name} {r.ttl} IN {r.type} {r.rdata}" for r in found.answers)


async def test_servfail_and_no_ready_spartan_until_a_ready_processor_mark_then_the_exact_records():
    gate = ProcessorReady(False)
    loop, follower = dns_loop(gate)
    publish(follower, WEB_A)
    async with running(loop):
        await eventually(loop.caught_up.is_set)
        for name in ("web.marathon.mesos.", "nothing.marathon.mesos.", "ready.spartan."):
            assert answer(loop, name) == (SERVFAIL, [])  # never NXDOMAIN while starting
        publish(follower, DB_A)
        gate.processor_ready = True
        await eventually(loop.ready.is_set)
        assert answer(loop, "web.marathon.mesos.") == (NOERROR, ["web.marathon.mesos. 60 IN A 10.0.1.5",
                                                                 "web.marathon.mesos. 60 IN A 10.0.1.6"])
        assert answer(loop, "db.marathon.mesos.") == (NOERROR, ["db.marathon.mesos. 60 IN A 10.0.1.9"])
        assert answer(loop, "ready.spartan.") == (NOERROR, ["ready.spartan. 5 IN A 127.0.0.1"])
        assert answer(loop, "thisnode.thisdcos.directory.") == (NOERROR, ["thisnode.thisdcos.directory. 5 IN A 10.0.0.9"])
        assert answer(loop, "nothing.marathon.mesos.")[0] == NXDOMAIN


async def test_a_bad_record_set_keeps_the_last_good_one_and_a_tombstone_removes_only_once_ready():
    gate = ProcessorReady(False)
    loop, follower = dns_loop(gate)
    publish(follower, WEB_A, DB_A)
    async with running(loop):
        await eventually(loop.caught_up.is_set)
        follower.publish(record_set_key(WEB_A.name, "A"), codec.encode(RecordSet(WEB_A.name, "A", 60, ["not-an-ip"])))
        follower.publish(record_set_key(DB_A.name, "A"), None)
        await eventually(lambda: loop.refused == 1 and "db.marathon.mesos./A" not in loop.desired)
        await eventually(lambda: not loop.dirty)
        assert loop.role.zones.rrset("db.marathon.mesos.", "A") is not None  # not removed before ready
        gate.processor_ready = True
        await eventually(loop.ready.is_set)
        assert answer(loop, "db.marathon.mesos.")[0] == NXDOMAIN
        assert answer(loop, "web.marathon.mesos.")[1] == ["web.marathon.mesos. 60 IN A 10.0.1.5",
                                                          "web.marathon.mesos. 60 IN A 10.0.1.6"]


async def test_dns_publishes_a_vip_name_only_after_the_l4lb_kernel_has_the_vip_and_is_ready_after_l4lb():
    gate = ProcessorReady(True)
    kernel, vips, l4lb = refusing_l4lb(gate)
    dns, follower = dns_loop(gate)
    publish(follower, WEB_A)
    wire({"l4lb": l4lb, "dns": dns})
    name = "shopweb.marathon.l4lb.thisdcos.directory."
    async with running(l4lb, dns):
        await eventually(lambda: dns.complete and l4lb.failures >= 3)
        assert dns.role.zones.rrset(name, "A") is None  # the kernel does not have the VIP
        assert not l4lb.ready.is_set() and not dns.ready.is_set()  # dns waits for l4lb
        assert answer(dns, "web.marathon.mesos.")[0] == SERVFAIL
        kernel.fail_next = 0
        await eventually(dns.ready.is_set)
        assert l4lb.ready.is_set()
        assert answer(dns, name) == (NOERROR, [f"{name} 5 IN A 11.1.0.3"])
        vips.publish("tcp/11.1.0.3/80", None)  # the VIP goes: its name goes with it
        await eventually(lambda: answer(dns, name)[0] == NXDOMAIN)


async def test_a_dns_only_node_answers_vip_names_from_the_vips_table():
    """No l4lb role, so no kernel to wait for: as every dcos-dns node does, it answers the VIP
    names the vips table holds, once it has caught up on that table too."""
    from appliers.dns.vip_table import VipTableRole
    from appliers.node import loops_for

    assert loops_for(("dns",)) == ["vips", "dns"] and loops_for(("l4lb", "dns")) == ["l4lb", "dns"]
    gate = ProcessorReady(False)
    vips = FakeFollower("vips")
    vips.publish("tcp/11.1.0.3/80", codec.encode(NAMED))
    table = ReconcileLoop(VipTableRole(), vips, gate, poll_interval=0.01)
    dns, follower = dns_loop(gate)
    publish(follower, WEB_A)
    wire({"vips": table, "dns": dns})
    name = "shopweb.marathon.l4lb.thisdcos.directory."
    async with running(table, dns):
        await eventually(lambda: dns.caught_up.is_set() and table.caught_up.is_set())
        assert answer(dns, name) == (SERVFAIL, [])  # nothing before a ready processor mark
        gate.processor_ready = True
        await eventually(dns.ready.is_set)
        assert table.ready.is_set()
        assert answer(dns, name) == (NOERROR, [f"{name} 5 IN A 11.1.0.3"])
        vips.publish("tcp/11.1.0.3/80", None)  # the VIP goes: its name goes with it
        await eventually(lambda: answer(dns, name)[0] == NXDOMAIN)
        assert answer(dns, "web.marathon.mesos.")[0] == NOERROR
