"""DNS workers (appliers/dns/workers.py) without processes: the `--dns-workers` option and its
checks, the restart backoff, and what crosses from the node's process to a worker (the l4lb
role's VIPs in the kernel and its readiness), through the real encoding, into a real dns loop.
The processes themselves: tests/integration/test_dns_workers.py."""

from __future__ import annotations

import asyncio
import dataclasses

import msgspec
import pytest
from click.testing import CliRunner

from appliers.dns.role import DnsRole
from appliers.dns.worker_process import RemoteRole
from appliers.dns.workers import RESTART_MAX_S, DnsWorkers, Update, changes, frame, restart_delay
from appliers.dns.zone import NOERROR, NXDOMAIN, SERVFAIL
from appliers.node import DEPENDENCIES, Node
from appliers.options import MAX_DNS_WORKERS, NodeOptions, check_dns_workers, dns_workers_from
from cli.main import main
from runtime.kafka.fake_follower import FakeFollower
from runtime.reconcile import ProcessorReady, ReconcileLoop
from schemas.catalog import Catalog
from tests.unit.node_loop.running import eventually, running
from tests.unit.node_loop.test_dns_loop import NAMED, refusing_l4lb

NAME = NAMED.dns + "."


@pytest.fixture
def built():
    """Nodes built here, never run: their followers' Kafka consumers are closed afterwards."""
    nodes: list[Node] = []

    def build(**changed) -> Node:
        nodes.append(Node(options(**changed)))
        return nodes[-1]

    yield build
    for node in nodes:
        for loop in node.loops.values():
            loop.follower.close()


def options(**changed) -> NodeOptions:
    base = NodeOptions("unused:9092", Catalog(), "test", "10.0.0.9", roles=("l4lb", "dns"),
                       dns_listen=("127.0.0.1", 43199), dns_workers=2)
    return dataclasses.replace(base, **changed)


# -- the option ----------------------------------------------------------------------------

@pytest.mark.parametrize("value, cpus, expected", [
    ("1", 8, 1), ("2", 1, 2), (" 64 ", 2, 64), (3, 2, 3),
    ("auto", 2, 2), ("AUTO", 1, 1), ("auto", 200, MAX_DNS_WORKERS), ("auto", 0, 1),
])
def test_dns_workers_is_a_count_in_range_or_one_per_cpu(value, cpus, expected):
    assert dns_workers_from(value, cpus) == expected


@pytest.mark.parametrize("value", ["0", "65", "-1", "", "two", "1.5", "auto2"])
def test_dns_workers_refuses_anything_else_and_says_what_it_takes(value):
    with pytest.raises(ValueError, match=r"--dns-workers must be 'auto' or a whole number from 1 to 64, got "):
        dns_workers_from(value, 2)


def test_dns_workers_auto_defaults_to_this_machines_cpus():
    assert 1 <= dns_workers_from("auto") <= MAX_DNS_WORKERS


@pytest.mark.parametrize("changed, why", [
    ({"roles": ("l4lb",)}, "--dns-workers above 1 needs the dns role"),
    ({"dns_listen": ("127.0.0.1", 0)}, "needs a fixed --dns-listen port"),
    ({"dns_http": ("127.0.0.1", 0)}, "needs a fixed --dns-http port"),
    ({"dns_workers": 0}, "--dns-workers must be from 1 to 64, got 0"),
    ({"dns_workers": 65}, "--dns-workers must be from 1 to 64, got 65"),
])
def test_workers_need_the_dns_role_and_fixed_ports(changed, why, built):
    with pytest.raises(ValueError, match=why):
        check_dns_workers(options(**changed))
    with pytest.raises(ValueError, match=why):
        built(**changed)


def test_one_worker_is_todays_node_with_any_port(built):
    check_dns_workers(options(dns_workers=1, dns_listen=("127.0.0.1", 0), roles=("l4lb",)))
    node = built(dns_workers=1, dns_listen=("127.0.0.1", 0))
    assert node.dns_workers is None and set(node.loops) == {"l4lb", "dns"}
    assert not node.dns.role.reuse_port


def test_with_workers_the_node_runs_l4lb_itself_and_shares_its_vips(built):
    node = built()
    assert set(node.loops) == {"l4lb"} and node.dns is None
    assert node.dns_workers.count == 2 and set(node.dns_workers.shared) == {"l4lb"}
    dns_only = built(roles=("dns",))  # no kernel of its own: it follows the vips table for the names
    assert set(dns_only.loops) == {"vips"} and set(dns_only.dns_workers.shared) == {"vips"}
    worker = built(dns_worker=1)  # inside worker 1: the dns role, on a shared port
    assert worker.dns_workers is None and worker.dns.role.reuse_port


@pytest.mark.parametrize("args, message", [
    (("--dns-workers", "0"), "--dns-workers must be 'auto' or a whole number from 1 to 64, got '0'"),
    (("--dns-workers", "many"), "got 'many'"),
    (("--dns-workers", "2", "--dns-listen", "127.0.0.1:0"), "needs a fixed --dns-listen port"),
    (("--dns-workers", "2", "--roles", "l4lb"), "needs the dns role"),
])
def test_the_cli_refuses_bad_worker_options_before_starting_anything(args, message):
    common = ("node", "--bootstrap", "127.0.0.1:1", "--node-id", "n", "--agent-ip", "10.0.0.1", "--roles", "dns")
    result = CliRunner().invoke(main, [*common, *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


# -- supervision and the channel -------------------------------------------------------------

def test_restarts_back_off_doubling_to_a_bound():
    delays = [restart_delay(n) for n in range(1, 12)]
    assert delays[:4] == [0.5, 1.0, 2.0, 4.0]
    assert delays == sorted(delays) and max(delays) == RESTART_MAX_S == restart_delay(10**6)


def test_changes_are_what_was_set_and_what_went():
    assert changes({"a": 1, "b": 2}, {"b": 3, "c": 4}) == ({"b": 3, "c": 4}, ["a"])
    assert changes({"a": 1}, {"a": 1}) == ({}, [])
    assert frame(b"xyz") == b"\x00\x00\x00\x03xyz"


class InMemoryWorker:
    """A worker's end of the channel in this process: each frame decoded as the worker does,
    into its RemoteRole."""

    def __init__(self, remote: RemoteRole) -> None:
        self.remote = remote
        self.frames = 0

    def send(self, payload: bytes) -> None:
        self.frames += 1
        self.remote.take(msgspec.json.decode(payload, type=Update))


async def test_a_workers_dns_loop_serves_a_vip_name_only_once_the_nodes_kernel_has_it_and_l4lb_is_ready():
    """test_dns_loop's dependency test, with the dns loop on the far side of the channel."""
    gate = ProcessorReady(True)
    kernel, vips, l4lb = refusing_l4lb(gate)
    supervisor = DnsWorkers(options(), shared=[d for d in DEPENDENCIES if d.role == "dns" and d.waits_for == "l4lb"])
    supervisor.wire({"l4lb": l4lb})

    # The worker: a dns loop of its own, waiting for the node's l4lb role through the channel.
    role = DnsRole(options(dns_worker=0), listen=False)
    dns_follower = FakeFollower("dns")
    dns = ReconcileLoop(role, dns_follower, gate, poll_interval=0.01, resync_interval=None)
    remote = RemoteRole(DEPENDENCIES[0], dns)
    dns.waits_for += (remote,)
    worker = InMemoryWorker(remote)
    supervisor.workers[0] = worker

    stop = asyncio.Event()
    relay = asyncio.create_task(supervisor._relay_ready("l4lb", l4lb, stop))
    try:
        async with running(l4lb, dns):
            await eventually(lambda: dns.complete and l4lb.failures >= 3)
            assert role.zones.rrset(NAME, "A") is None  # the kernel does not have the VIP
            assert not dns.ready.is_set() and not remote.ready.is_set()
            assert role.zones.lookup("ready.spartan.", "A").rcode == SERVFAIL
            kernel.fail_next = 0
            await eventually(dns.ready.is_set)
            assert l4lb.ready.is_set() and remote.ready.is_set()
            found = role.zones.lookup(NAME, "A")
            assert (found.rcode, [r.rdata for r in found.answers]) == (NOERROR, ["11.1.0.3"])
            assert supervisor.shared["l4lb"].state == {"tcp/11.1.0.3/80": NAMED}
            vips.publish("tcp/11.1.0.3/80", None)  # the VIP goes: its name goes with it, in the worker
            await eventually(lambda: role.zones.lookup(NAME, "A").rcode == NXDOMAIN)
            sent = worker.frames
            l4lb._full = True  # a pass that changes nothing sends nothing
            await eventually(lambda: not l4lb.dirty)
            assert worker.frames == sent
    finally:
        stop.set()
        await relay


async def test_a_restarted_worker_starts_from_the_state_so_far():
    """What `_start` sends a new worker after its start frame: everything exported so far."""
    supervisor = DnsWorkers(options(), shared=[DEPENDENCIES[0]])
    shared = supervisor.shared["l4lb"]
    shared.state, shared.ready = {"tcp/11.1.0.3/80": NAMED}, True
    role = DnsRole(options(dns_worker=1), listen=False)
    dns = ReconcileLoop(role, FakeFollower("dns"), ProcessorReady(True), resync_interval=None)
    remote = RemoteRole(DEPENDENCIES[0], dns)
    InMemoryWorker(remote).send(shared.update(shared.state, ()))
    assert remote.ready.is_set() and remote.state == {"tcp/11.1.0.3/80": NAMED}
    assert [key for key in dns.desired] == [f"vip:{NAME}/A"]
