"""The overlay role on the reconcile loop, against the fake kernel and a fake follower: no
root, no Kafka."""

from __future__ import annotations

import orjson

from appliers.overlay.configdir import ConfigDir
from appliers.overlay.fake import FakeKernel
from appliers.overlay.model import desired_state
from appliers.overlay.role import OverlayRole
from runtime.kafka.fake_follower import FakeFollower
from runtime.reconcile import ProcessorReady, ReconcileLoop
from schemas import codec
from schemas.overlay import lease_key
from tests.unit.node_loop.running import eventually, running
from tests.unit.overlay_applier.leases import lease

ME = "10.99.0.1"


def publish(follower: FakeFollower, *leases) -> None:
    for x in leases:
        follower.publish(lease_key(x.overlay, x.agent_id), codec.encode(x))


def overlay_loop(tmp_path, gate=None, kernel=None, **settings):
    kernel = kernel or FakeKernel()
    follower = FakeFollower("overlay")
    role = OverlayRole(kernel, ME, ConfigDir(tmp_path / "cni"))
    loop = ReconcileLoop(role, follower, gate or ProcessorReady(), poll_interval=0.01, **settings)
    return loop, follower, kernel


async def test_catch_up_programs_the_peers_and_writes_the_cni_config(tmp_path):
    loop, follower, kernel = overlay_loop(tmp_path, ProcessorReady(True))
    publish(follower, lease(1), lease(2), lease(3))
    async with running(loop):
        await eventually(loop.ready.is_set)
        assert kernel.state == desired_state([lease(1), lease(2), lease(3)], ME)
        written = orjson.loads((tmp_path / "cni" / "dcos.conflist").read_bytes())
        assert written["plugins"][0]["ipam"]["ranges"][0][0]["subnet"] == "9.0.0.0/25"


async def test_a_removed_lease_is_kept_until_complete_then_removed(tmp_path):
    gate = ProcessorReady(False)
    loop, follower, kernel = overlay_loop(tmp_path, gate)
    publish(follower, lease(1), lease(2), lease(3))
    async with running(loop):
        await eventually(loop.caught_up.is_set)
        follower.publish(lease_key("dcos", "agent-3"), None)
        await eventually(lambda: loop.passes >= 2)
        assert "44.128.0.3" in kernel.state.neighbours  # not complete: nothing removed
        gate.processor_ready = True
        await eventually(loop.ready.is_set)
        assert kernel.state == desired_state([lease(1), lease(2)], ME)


async def test_a_refused_record_keeps_the_last_good_lease(tmp_path):
    loop, follower, kernel = overlay_loop(tmp_path, ProcessorReady(True))
    publish(follower, lease(1), lease(2))
    follower.publish(lease_key("dcos", "agent-9"), codec.encode(lease(2)))  # key and value disagree
    follower.publish(lease_key("dcos", "agent-2"), b"{}")
    async with running(loop):
        await eventually(loop.ready.is_set)
        assert loop.refused == 2 and kernel.state == desired_state([lease(1), lease(2)], ME)


async def test_drift_is_repaired_by_the_resync_and_a_failure_retried(tmp_path):
    loop, follower, kernel = overlay_loop(tmp_path, ProcessorReady(True), resync_interval=0.05, retry_interval=0.01)
    publish(follower, lease(1), lease(2))
    async with running(loop):
        await eventually(loop.ready.is_set)
        want = kernel.read()
        del kernel.state.routes[(254, "9.0.1.0/24")]
        await eventually(lambda: kernel.state == want)
        kernel.fail_next = 1
        publish(follower, lease(3))
        await eventually(lambda: loop.failures == 1 and "44.128.0.3" in kernel.state.neighbours)


async def test_a_restart_onto_a_converged_kernel_changes_nothing(tmp_path):
    loop, follower, kernel = overlay_loop(tmp_path, ProcessorReady(True))
    publish(follower, lease(1), lease(2), lease(3))
    async with running(loop):
        await eventually(loop.ready.is_set)
    batches = len(kernel.batches)
    again, follower2, _ = overlay_loop(tmp_path, ProcessorReady(True), kernel=kernel)
    publish(follower2, lease(1), lease(2), lease(3))
    async with running(again):
        await eventually(again.ready.is_set)
    assert len(kernel.batches) == batches and again.role.operations == 0
