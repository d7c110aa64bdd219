"""The l4lb role in the reconcile loop, against a fake kernel and a fake follower: no root, no
Kafka. Each test asserts what the fake kernel holds (VIP -> slots) and how it got there."""

from __future__ import annotations

from appliers.l4lb.fake import FakeKernel
from appliers.l4lb.role import L4lbRole
from runtime.kafka.fake_follower import FakeFollower
from runtime.reconcile import ProcessorReady, ReconcileLoop
from schemas import codec
from schemas.headers import Observation
from schemas.l4lb import Backend, Vip
from tests.unit.node_loop.running import eventually, running

WEB = Vip("tcp", "11.0.0.7", 80, [Backend("10.0.0.1", 8080, 1, "t1"), Backend("10.0.0.2", 8080, 1, "t2")])
DB = Vip("tcp", "11.0.0.8", 5432, [Backend("10.0.0.3", 5432, 1, "t3")])
OLD = Vip("udp", "11.0.0.9", 53, [Backend("10.0.0.4", 53, 1, "t4")])


def key_of(vip: Vip) -> str:
    return f"{vip.protocol}/{vip.ip}/{vip.port}"


def publish(follower: FakeFollower, *vips: Vip, headers=None) -> None:
    for vip in vips:
        follower.publish(key_of(vip), codec.encode(vip), headers)


def in_kernel(kernel: FakeKernel) -> dict[tuple, tuple]:
    """(ip, protocol, port) -> its backend slots, as the fake kernel holds them."""
    return {key: vip.slots for key, vip in kernel.vips().items() if vip is not None}


def slots(vip: Vip) -> tuple:
    return tuple((b.ip, b.port) for b in vip.backends)


def l4lb_loop(kernel: FakeKernel | None = None, gate: ProcessorReady | None = None, **settings):
    kernel = kernel or FakeKernel()
    follower = FakeFollower("vips")
    loop = ReconcileLoop(L4lbRole(kernel), follower, gate or ProcessorReady(), poll_interval=0.01, **settings)
    return loop, follower, kernel


async def test_catch_up_programs_everything_then_ready_after_the_processor_mark():
    gate = ProcessorReady(False)
    loop, follower, kernel = l4lb_loop(gate=gate)
    publish(follower, WEB, DB)
    async with running(loop):
        await eventually(loop.caught_up.is_set)
        assert in_kernel(kernel) == {("11.0.0.7", "tcp", 80): slots(WEB), ("11.0.0.8", "tcp", 5432): slots(DB)}
        assert not loop.complete and not loop.ready.is_set()  # no processor mark yet
        gate.processor_ready = True
        await eventually(loop.ready.is_set)
        assert loop.complete and loop.progress.read == 2


async def test_nothing_is_pruned_before_ready():
    kernel = FakeKernel()
    first, follower, _ = l4lb_loop(kernel, ProcessorReady(True))
    publish(follower, WEB, OLD)
    async with running(first):  # an earlier node programmed OLD
        await eventually(first.ready.is_set)
    gate = ProcessorReady(False)
    loop, follower, _ = l4lb_loop(kernel, gate)
    publish(follower, WEB, DB)  # OLD is gone from the table
    async with running(loop):
        await eventually(loop.caught_up.is_set)
        follower.publish(key_of(DB), None)  # and DB is tombstoned before the node is ready
        await eventually(lambda: "tcp/11.0.0.8/5432" not in loop.desired)
        await eventually(lambda: not loop.dirty)
        assert set(in_kernel(kernel)) == {("11.0.0.7", "tcp", 80), ("11.0.0.8", "tcp", 5432), ("11.0.0.9", "udp", 53)}
        gate.processor_ready = True
        await eventually(loop.ready.is_set)
        assert in_kernel(kernel) == {("11.0.0.7", "tcp", 80): slots(WEB)}


async def test_a_batch_of_changes_is_applied_in_one_transaction():
    loop, follower, kernel = l4lb_loop(gate=ProcessorReady(True))
    publish(follower, WEB)
    async with running(loop):
        await eventually(loop.ready.is_set)
        before = len(kernel.transactions)
        changed = [Vip("tcp", f"11.0.1.{i}", 80, [Backend("10.0.0.1", 8080, 1, "t1")]) for i in range(5)]
        follower.publish_batch([(key_of(vip), codec.encode(vip), None) for vip in changed])
        await eventually(lambda: len(in_kernel(kernel)) == 6)
        assert len(kernel.transactions) == before + 1
        assert kernel.transactions[-1].scope is not None  # planned partially: the five changed keys only


async def test_a_failed_apply_keeps_the_last_good_state_and_is_retried():
    loop, follower, kernel = l4lb_loop(gate=ProcessorReady(True), retry_interval=0.3)
    publish(follower, WEB)
    async with running(loop):
        await eventually(loop.ready.is_set)
        kernel.fail_next = 1
        moved = Vip("tcp", "11.0.0.7", 80, [Backend("10.0.0.9", 8080, 1, "t9")])
        publish(follower, moved)
        await eventually(lambda: loop.failures == 1)
        assert in_kernel(kernel) == {("11.0.0.7", "tcp", 80): slots(WEB)}  # the last good state
        assert "refused by the fake kernel" in loop.last_error
        reads = kernel.reads
        await eventually(lambda: in_kernel(kernel) == {("11.0.0.7", "tcp", 80): slots(moved)})
        assert kernel.reads == reads + 1  # the retry read the kernel back
        assert loop.last_error is None


async def test_the_periodic_resync_repairs_drift():
    loop, follower, kernel = l4lb_loop(gate=ProcessorReady(True), resync_interval=0.2)
    publish(follower, WEB, DB)
    async with running(loop):
        await eventually(loop.ready.is_set)
        kernel.drop(("11.0.0.8", "tcp", 5432))  # deleted by hand
        assert set(in_kernel(kernel)) == {("11.0.0.7", "tcp", 80)}
        await eventually(lambda: ("11.0.0.8", "tcp", 5432) in in_kernel(kernel))
        assert in_kernel(kernel)[("11.0.0.8", "tcp", 5432)] == slots(DB)


async def test_a_bad_record_keeps_the_last_good_value():
    loop, follower, kernel = l4lb_loop(gate=ProcessorReady(True))
    publish(follower, WEB)
    async with running(loop):
        await eventually(loop.ready.is_set)
        follower.publish(key_of(WEB), b'{"protocol": "tcp", "ip": 7}')
        publish(follower, DB)
        await eventually(lambda: ("11.0.0.8", "tcp", 5432) in in_kernel(kernel))
        assert loop.refused == 1 and loop.desired[key_of(WEB)] == WEB
        assert in_kernel(kernel)[("11.0.0.7", "tcp", 80)] == slots(WEB)


async def test_convergence_is_applied_time_minus_the_observed_time_of_the_headers():
    applied = []
    loop, follower, kernel = l4lb_loop(gate=ProcessorReady(True), clock=lambda: 1002.5)
    loop.on_applied = lambda records, at: applied.append(([r.key for r in records], at))
    publish(follower, WEB)
    async with running(loop):
        await eventually(loop.ready.is_set)
        assert list(loop.convergence_s) == []  # the start-up load is not a change
        headers = Observation("trace-1", 1_000_000_000_000).headers("wayfinder.l4lb.Vip/1")
        follower.publish_batch([(key_of(DB), codec.encode(DB), headers), (key_of(WEB), None, headers)])
        await eventually(lambda: applied)
        assert list(loop.convergence_s) == [2.5, 2.5]
        assert applied == [([key_of(DB), key_of(WEB)], 1002.5)]
        assert in_kernel(kernel) == {("11.0.0.8", "tcp", 5432): slots(DB)}


def test_programmed_reads_the_kernel_back_with_the_desired_records_names():
    from appliers.l4lb.applier import L4Applier

    kernel = FakeKernel()
    applier = L4Applier(kernel)
    named = Vip("tcp", "11.0.0.7", 80, [Backend("10.0.0.2", 8080, 2, "t2"), Backend("10.0.0.1", 8080, 1, "t1")],
                name="/shop/web", framework="marathon", dns="shopweb.marathon.l4lb.thisdcos.directory")
    applier.set_desired({key_of(named): named, key_of(DB): DB}, complete=True)
    assert applier.sync().ok
    kernel.drop(("11.0.0.8", "tcp", 5432))  # gone from the kernel behind the applier's back
    assert applier.programmed() == {key_of(named): Vip(
        "tcp", "11.0.0.7", 80, [Backend("10.0.0.1", 8080, 1, "t1"), Backend("10.0.0.2", 8080, 1, "t2"),
                                Backend("10.0.0.2", 8080, 1, "t2")],  # one backend per slot: weight 2 twice
        name="/shop/web", framework="marathon", dns="shopweb.marathon.l4lb.thisdcos.directory")}
