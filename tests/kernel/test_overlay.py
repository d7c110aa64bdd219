"""The overlay role against real kernels: three agents (namespaces joined by an underlay
bridge), each running the role on the reconcile loop (a fake follower holding the same lease
table, no Kafka), and containers attached with the real CNI plugins from the config the role
wrote. Traffic between containers on different agents crosses VXLAN (vtep1024, UDP 64000).

The node's metrics for the role (appliers/metrics.py) count the operations each agent applied.

Each test builds its own cluster and deletes every namespace it made, also on failure."""

from __future__ import annotations

import contextlib
import time

import pytest

from appliers.metrics import loop_samples, role_samples
from appliers.overlay.configdir import ConfigDir
from appliers.overlay.inspect import compare
from appliers.overlay.kernel import OverlayKernel
from appliers.overlay.model import desired_state
from appliers.overlay.role import OverlayRole
from runtime.kafka.fake_follower import FakeFollower
from runtime.reconcile import ProcessorReady, ReconcileLoop, Scope
from schemas import codec
from schemas.overlay import lease_key
from simulator.hosts import sh
from tests.kernel.overlay_cluster import AGENTS, Cluster, EchoServer, tcp_connect, tcp_round_trip, udp_round_trip
from tests.unit.node_loop.running import eventually, running
from tests.unit.overlay_applier.leases import lease

pytestmark = pytest.mark.timeout(120)
LEASES = [lease(n) for n in range(1, AGENTS + 1)]
# What a fresh agent of LEASES applies: its VTEP, address and table-42 rule, per peer (2) a
# neighbour, an FDB entry and two routes (the peer's subnet, and its agent IP in table 42),
# the masquerade table, and its CNI config.
FRESH_AGENT_OPS = 3 + 2 * 4 + 1 + 1
# What removing one peer costs every other agent: its neighbour, FDB entry and two routes.
PEER_REMOVAL_OPS = 4


def node_loops(cluster: Cluster, leases=LEASES, resync: float | None = 30.0) -> list[ReconcileLoop]:
    """One overlay loop per agent, each on its own kernel, each following the same table."""
    loops = []
    for n in range(1, AGENTS + 1):
        follower = FakeFollower("overlay")
        for x in leases:
            follower.publish(lease_key(x.overlay, x.agent_id), codec.encode(x))
        role = OverlayRole(OverlayKernel(cluster.agent(n)), cluster.agent_ip(n), ConfigDir(cluster.config_dir(n)))
        loops.append(ReconcileLoop(role, follower, ProcessorReady(True), resync_interval=resync, poll_interval=0.02))
    return loops


def tombstone(loops: list[ReconcileLoop], overlay: str, agent_id: str) -> None:
    for loop in loops:
        loop.follower.publish(lease_key(overlay, agent_id), None)


async def all_ready(loops: list[ReconcileLoop]) -> None:
    await eventually(lambda: all(loop.ready.is_set() for loop in loops), timeout=20)


def metrics(loop: ReconcileLoop) -> tuple[float, float, float]:
    """(operations applied, desired entries, failed passes) as the node's metrics report them."""
    found = {**loop_samples("overlay", loop), **role_samples("overlay", loop)}
    role = (("role", "overlay"),)
    return (found[("wayfinder_overlay_operations_total", ())], found[("wayfinder_role_desired_entries", role)],
            found[("wayfinder_role_apply_failures_total", role)])


def kernel_text(cluster: Cluster, n: int) -> str:
    """What iproute2 (not our seam) shows of agent n's overlay state."""
    ns = cluster.agent(n)
    return "\n".join([sh("ip", "-d", "link", "show", "vtep1024", ns=ns, check=False), sh("ip", "addr", ns=ns),
                      sh("ip", "neigh", "show", "dev", "vtep1024", ns=ns, check=False),
                      sh("bridge", "fdb", "show", "dev", "vtep1024", ns=ns, check=False), sh("ip", "route", ns=ns),
                      sh("ip", "route", "show", "table", "42", ns=ns), sh("ip", "rule", ns=ns),
                      sh("nft", "list", "table", "inet", "wayfinder_overlay", ns=ns, check=False)])


def peer_lines(n: int, peer: int) -> list[str]:
    """The lines agent n's kernel shows for `peer`, as dcos-net programs them (reference 4.3)."""
    vtep, mac, ip = f"44.128.0.{peer}", f"70:b3:d5:80:00:{peer:02x}", f"10.99.0.{peer}"
    return [f"{vtep} lladdr {mac} PERMANENT", f"{mac} dst {ip} self permanent",
            f"9.0.{peer - 1}.0/24 via {vtep} dev vtep1024 proto 88", f"{ip} via {vtep} dev vtep1024 proto 88"]


def udp_echo(netns: str, ip: str, payload: bytes, port: int = 7000) -> bytes:
    """A UDP round trip, tried a few times: the first datagram may wait on ARP."""
    for attempt in range(3):
        with contextlib.suppress(TimeoutError):
            return udp_round_trip(netns, ip, payload, port, timeout=2.0)
    raise AssertionError(f"no UDP echo from {ip}:{port} in {netns}")


async def test_every_agent_programs_its_vtep_and_its_peers(cluster):
    loops = node_loops(cluster)
    async with running(*loops):
        await all_ready(loops)
    assert [metrics(loop) for loop in loops] == [(FRESH_AGENT_OPS, len(LEASES), 0)] * AGENTS
    text = kernel_text(cluster, 1)
    for line in ["vxlan id 1024 local 10.99.0.1", "dstport 64000", "link/ether 70:b3:d5:80:00:01",
                 "inet 44.128.0.1/20", "from 9.0.0.0/8 lookup 42", *peer_lines(1, 2), *peer_lines(1, 3),
                 "ip saddr @sources4 ip daddr != @overlay4 masquerade",
                 # One element each: this node's subnet, and the overlay's whole network (DC/OS's
                 # masquerade exception), however many peers.
                 "elements = { 9.0.0.0/24 }", "elements = { 9.0.0.0/8 }"]:
        assert line in text, line
    assert "44.128.0.1 lladdr" not in text and "9.0.0.0/24 via" not in text  # never itself
    for n in (2, 3):
        assert f"local 10.99.0.{n}" in kernel_text(cluster, n)
    # `wayfinder overlay`'s comparison, on what the seam reads back: everything programmed.
    for n in range(1, AGENTS + 1):
        kernel = OverlayKernel(cluster.agent(n))
        try:
            report = compare(LEASES, cluster.agent_ip(n), kernel.read())
        finally:
            kernel.close()
        assert report["vtep"]["programmed"] and report["masquerade"]["programmed"]
        assert [peer["programmed"] for peer in report["peers"]] == [True, True]
        assert not any(report["unexpected"].values())


async def test_containers_on_two_agents_talk_tcp_and_udp_over_vxlan(cluster):
    loops = node_loops(cluster)
    async with running(*loops):
        await all_ready(loops)
        c1, c2 = cluster.container(1, "c1"), cluster.container(2, "c2")
        assert c1.startswith("9.0.0.") and c2.startswith("9.0.1.")
        server = EchoServer(f"{cluster.prefix}c2")
        host = EchoServer(cluster.agent(2), port=7001)  # agent 2 itself
        try:
            with tcp_connect(f"{cluster.prefix}c1", c2) as conn:
                assert tcp_round_trip(conn, b"over vxlan" * 200) == b"over vxlan" * 200
            assert udp_echo(f"{cluster.prefix}c1", c2, b"datagram") == b"datagram"
            assert set(server.peers) == {c1}  # inside the overlay: no masquerade
            # To another agent's IP: table 42 sends it through the tunnel, masqueraded as our VTEP.
            with tcp_connect(f"{cluster.prefix}c1", cluster.agent_ip(2), 7001) as conn:
                assert tcp_round_trip(conn, b"to the agent") == b"to the agent"
            assert host.peers == ["44.128.0.1"]
        finally:
            server.close()
            host.close()


async def test_a_removed_lease_is_removed_from_every_peer(cluster):
    loops = node_loops(cluster)
    async with running(*loops):
        await all_ready(loops)
        assert all(line in kernel_text(cluster, 1) for line in peer_lines(1, 3))
        done = [metrics(loop)[0] for loop in loops]
        tombstone(loops, "dcos", "agent-3")

        def gone() -> bool:
            texts = [kernel_text(cluster, n) for n in (1, 2)]
            return all(not any(line in text for line in peer_lines(n, 3)) and "9.0.2.0/24" not in text
                       for n, text in zip((1, 2), texts))

        await eventually(gone, timeout=10)
        assert all(line in kernel_text(cluster, 1) for line in peer_lines(1, 2))  # the others stay
        # Agent 3 itself has no lease any more: its device, rule, table and CNI config go.
        await eventually(lambda: "vtep1024" not in kernel_text(cluster, 3), timeout=10)
        assert "lookup 42" not in kernel_text(cluster, 3)
        assert not (cluster.config_dir(3) / "dcos.conflist").exists()
        # Agents 1 and 2 removed the peer's four entries; agent 3 its rule, masquerade table,
        # device (its addresses, neighbours, FDB and routes go with it) and CNI config.
        await eventually(lambda: [metrics(loop)[0] - d for loop, d in zip(loops, done)]
                         == [PEER_REMOVAL_OPS, PEER_REMOVAL_OPS, 4], timeout=5)
        assert [metrics(loop)[1:] for loop in loops] == [(len(LEASES) - 1, 0)] * AGENTS


async def test_drift_is_repaired_by_the_next_resync(cluster):
    loops = node_loops(cluster, resync=0.3)
    async with running(*loops):
        await all_ready(loops)
        want = kernel_text(cluster, 1)
        ns, role = cluster.agent(1), loops[0].role
        done, others = role.operations, [loop.role.operations for loop in loops[1:]]
        sh("ip", "route", "del", "9.0.1.0/24", ns=ns)
        sh("ip", "neigh", "del", "44.128.0.3", "dev", "vtep1024", ns=ns)
        sh("ip", "route", "del", "10.99.0.2", "table", "42", ns=ns)
        sh("nft", "delete", "table", "inet", "wayfinder_overlay", ns=ns)
        await eventually(lambda: role.operations >= done + 4 and kernel_text(cluster, 1) == want, timeout=10)
        assert [loop.role.operations for loop in loops[1:]] == others  # the other agents had no drift


async def test_a_node_restart_keeps_an_established_connection(cluster):
    loops = node_loops(cluster)
    async with running(*loops):
        await all_ready(loops)
    c2 = cluster.container(2, "c2")
    cluster.container(1, "c1")
    server = EchoServer(f"{cluster.prefix}c2")
    try:
        with tcp_connect(f"{cluster.prefix}c1", c2) as conn:
            assert tcp_round_trip(conn, b"before") == b"before"
            before = [kernel_text(cluster, n) for n in range(1, AGENTS + 1)]
            again = node_loops(cluster)  # new roles, new kernel seams, the same kernels
            started = time.monotonic()
            async with running(*again):
                await all_ready(again)
                assert tcp_round_trip(conn, b"during") == b"during"
            assert [loop.role.operations for loop in again] == [0, 0, 0]  # nothing to change
            assert all(loop.passes >= 1 for loop in again) and time.monotonic() - started < 20
            assert [kernel_text(cluster, n) for n in range(1, AGENTS + 1)] == before
            assert tcp_round_trip(conn, b"after") == b"after"
    finally:
        server.close()


def test_an_ipv6_overlay_reads_back_exactly_as_desired(cluster):
    """The full read (raw netlink dumps) against desired_state, IPv6 VTEPs and /80 routes
    included: a second full pass finds nothing to do."""
    leases = {lease_key(x.overlay, x.agent_id): x
              for n in range(1, AGENTS + 1) for x in (lease(n, ipv6=True), lease(n, "dcos6", ipv6=True))}
    kernel = OverlayKernel(cluster.agent(1))
    role = OverlayRole(kernel, cluster.agent_ip(1))
    try:
        for expected_ops in (True, False):
            scope = Scope(None, True)
            plan = role.plan(leases, role.observe(scope), scope)
            assert bool(plan) == expected_ops
            if plan:
                role.apply(plan)
        state = kernel.read()
        assert state == desired_state(leases.values(), cluster.agent_ip(1))
        assert state.routes[(254, "fd01:b:0:0:2::/80")] == "fd01:a::2" and state.neighbours["fd01:a::3"]
        assert state.nat.overlay == {"9.0.0.0/8", "fd01:b::/64"}
    finally:
        kernel.close()
