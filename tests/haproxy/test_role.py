"""The haproxy node role against a real HAProxy: reloads are coalesced (at most one per
interval), and a service whose port another process holds is left out while every other
service keeps being served and updated. The node's metrics count those reloads and runtime passes."""

from __future__ import annotations

import socket

import pytest

from appliers.haproxy.role import UNBINDABLE_RETRY_S, HaproxyRole
from appliers.metrics import role_samples
from runtime.kafka.fake_follower import FakeFollower
from runtime.reconcile import ProcessorReady, ReconcileLoop, Scope
from schemas.haproxy import service_key
from tests.haproxy.loopback import free_ports, get
from tests.haproxy.conftest import service


class FakeTime:
    """The role's clock and sleep: sleeping advances the clock, and is recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.now += seconds


def sync(role: HaproxyRole, services, changed: set[str] | None = None) -> None:
    """One pass of the reconcile loop over `services` (the whole table): a full pass, or one
    over the keys of `changed` (app ids) only, as the loop makes after records arrive."""
    desired = {service_key(s.group, s.app_id, s.service_port): s for s in services}
    keys = None if changed is None else frozenset(k for k in {*desired, *role.observe(Scope(None, True)).services}
                                                   if k.split(":")[1] in changed)
    scope = Scope(keys, True)
    change = role.plan(desired, role.observe(scope), scope)
    if change is not None:
        role.apply(change)


def counted(role: HaproxyRole) -> tuple[float, float]:
    """(reloads, runtime passes) as the node's metrics report them for a loop of this role."""
    found = role_samples("haproxy", ReconcileLoop(role, FakeFollower("haproxy"), ProcessorReady(True)))
    return found[("wayfinder_haproxy_reloads_total", ())], found[("wayfinder_haproxy_runtime_passes_total", ())]


@pytest.fixture
def role(balancer):
    clock = FakeTime()
    made = HaproxyRole(balancer.settings, balancer.process, min_reload_interval=1.0,
                       monotonic=clock.monotonic, sleep=clock.sleep)
    made.clock = clock
    return made


def test_a_second_structural_change_waits_for_the_reload_interval_and_membership_never_waits(role, backends):
    first, second = backends(2)
    p1, p2 = free_ports(2)
    assert counted(role) == (0, 0)
    sync(role, [service("/one", p1, first)])
    assert (role.reloads, role.clock.slept) == (1, [])  # the first start waits for nothing
    assert counted(role) == (1, 0)  # the first start counts as a reload
    master_reloads = role.process.show_proc().reloads  # HAProxy's own count, to check ours against

    role.clock.now += 0.25
    sync(role, [service("/one", p1, first, second)], changed={"/one"})  # membership: the runtime API, at once
    assert (role.reloads, role.runtime_passes, role.clock.slept) == (1, 1, [])
    assert {get(p1).body for _ in range(4)} == {"b1", "b2"}
    assert counted(role) == (1, 1)  # a runtime pass, no reload
    assert role.process.show_proc().reloads == master_reloads

    sync(role, [service("/one", p1, first, second), service("/two", p2, second)])  # structure
    assert (role.reloads, role.clock.slept) == (2, [0.75])
    assert get(p2).body == "b2"
    assert counted(role) == (2, 1)  # exactly one more reload
    assert role.process.show_proc().reloads == master_reloads + 1

    sync(role, [service("/one", p1, first, second), service("/two", p2, second)])  # nothing changed
    assert counted(role) == (2, 1)

    role.clock.now += 5.0  # long after the last reload: no wait
    sync(role, [service("/one", p1, first, second)])
    assert (role.reloads, role.clock.slept) == (3, [0.75])
    assert counted(role) == (3, 1)


def test_a_port_another_process_holds_leaves_out_that_service_only_until_it_is_free(role, backends):
    (app,) = backends(1)
    p1, p2, p3 = free_ports(3)
    sync(role, [service("/one", p1, app)])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", p2))
        squatter.listen()
        sync(role, [service("/one", p1, app), service("/two", p2, app), service("/three", p3, app)])
        assert role.left_out_unbindable == [f"two_{p2}"]
        assert get(p1).body == "b1" and get(p3).body == "b1"

        # Still left out while its time runs: other changes keep going through.
        role.clock.now += 10
        sync(role, [service("/one", p1, app), service("/two", p2, app)])
        assert role.left_out_unbindable == [f"two_{p2}"]
        assert get(p1).body == "b1"
        with pytest.raises(OSError):
            get(p3)

    role.clock.now += UNBINDABLE_RETRY_S
    sync(role, [service("/one", p1, app), service("/two", p2, app)])
    assert role.left_out_unbindable == []
    assert get(p2).body == "b1"
