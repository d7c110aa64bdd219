"""Issue 12 end to end: simulator -> producer -> Kafka -> processor (overlay leases) -> one
`wayfinder node --roles overlay` per agent, each programming its own namespace.

The agents are namespaces joined by an underlay bridge (tests/kernel/overlay_cluster.py); the
simulator's agents are named by those namespaces' IPs, as a real agent is by its own. Every
node's kernel is read back through the role's seam and compared with the lease table by
`wayfinder overlay`'s comparison (appliers/overlay/inspect.py)."""

from __future__ import annotations

import asyncio

import pytest

from appliers.node import Node, NodeOptions
from appliers.overlay.inspect import compare
from appliers.overlay.kernel import OverlayKernel
from processors.overlay.config import parse_config
from schemas.overlay import Lease
from tests.integration.pipeline import Pipeline, RunningProcessor
from tests.kernel.overlay_cluster import AGENTS, Cluster
from tests.scenarios.mesos_fixtures import FIXTURES

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]

EMPTY_CLUSTER = FIXTURES / "mesos-state" / "empty.json"
GRACE_S = 5.0
CONFIG = parse_config(["dcos=9.0.0.0/8,24"], vtep6="", grace_s=GRACE_S)


def agent_id(n: int) -> str:
    return f"e2e-a{n}"


class Nodes:
    """One node per agent namespace, each running the overlay role alone."""

    def __init__(self, pipeline: Pipeline, cluster: Cluster):
        self.cluster = cluster
        self.nodes = [Node(NodeOptions(bootstrap=pipeline.bootstrap, catalog=pipeline.catalog, node_id=f"a{n}",
                                       agent_ip=cluster.agent_ip(n), roles=("overlay",), netns=cluster.agent(n),
                                       overlay_dir=str(cluster.config_dir(n)), resync_interval=5.0))
                      for n in range(1, AGENTS + 1)]
        self.stop = asyncio.Event()

    async def __aenter__(self) -> Nodes:
        self.tasks = [asyncio.create_task(node.run(self.stop)) for node in self.nodes]
        await asyncio.wait_for(asyncio.gather(*(node.loops["overlay"].ready.wait() for node in self.nodes)), 60)
        return self

    async def __aexit__(self, *exc) -> None:
        self.stop.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks), 30)


def kernel_report(cluster: Cluster, n: int, leases: list[Lease]) -> dict:
    """`wayfinder overlay`'s comparison of agent n's kernel with the lease table."""
    kernel = OverlayKernel(cluster.agent(n))
    try:
        return compare(leases, cluster.agent_ip(n), kernel.read())
    finally:
        kernel.close()


async def programmed_peers(pipeline: Pipeline, cluster: Cluster) -> dict[int, set[str]]:
    """Agent n -> the agent IPs its kernel holds as peers exactly as the leases ask (neighbour,
    FDB entry, subnet route, table-42 route), only once its own VTEP is right too; nothing
    the leases do not ask for may be left over."""
    leases = [Lease(**value) for value in (await pipeline.table("overlay")).values()]
    found = {}
    for n in range(1, AGENTS + 1):
        report = await asyncio.to_thread(kernel_report, cluster, n, leases)
        clean = not any(report["unexpected"].values())
        found[n] = {peer["agent_ip"] for peer in report["peers"] if peer["programmed"]} \
            if report["vtep"]["programmed"] and clean else set()
    return found


def ips(*agents: int) -> set[str]:
    return {Cluster.agent_ip(n) for n in agents}


async def test_agents_joining_and_leaving_the_simulator_become_and_stop_being_peers(kafka_bootstrap, cluster):
    async with Pipeline(kafka_bootstrap, mesos_state=EMPTY_CLUSTER) as pipeline:
        for n in (1, 2):
            await pipeline.control("POST", "/sim/agents", {"hostname": cluster.agent_ip(n), "id": agent_id(n)})
        async with RunningProcessor(pipeline, overlay=CONFIG), Nodes(pipeline, cluster):
            read = lambda: programmed_peers(pipeline, cluster)  # noqa: E731
            # Agent 3's namespace runs a node too, but it is not in the cluster yet: no lease, nothing to program.
            await pipeline.eventually(read, lambda p: p == {1: ips(2), 2: ips(1), 3: set()}, timeout=30)
            assert not (cluster.config_dir(3) / "dcos.conflist").exists()
            assert (cluster.config_dir(1) / "dcos.conflist").exists()

            # An agent added in the simulator: a peer on every other node, and programmed itself.
            await pipeline.control("POST", "/sim/agents", {"hostname": cluster.agent_ip(3), "id": agent_id(3)})
            await pipeline.eventually(read, lambda p: p == {1: ips(2, 3), 2: ips(1, 3), 3: ips(1, 2)}, timeout=30)

            # An agent removed: its lease waits out the grace (still a peer), then goes everywhere.
            await pipeline.control("DELETE", f"/sim/agents/{agent_id(2)}")
            gone = await pipeline.eventually(lambda: pipeline.table("overlay"),
                                             lambda t: t[f"dcos/{agent_id(2)}"]["gone_since"] is not None, timeout=30)
            assert {key for key, lease in gone.items() if lease["gone_since"] is None} == {
                f"dcos/{agent_id(1)}", f"dcos/{agent_id(3)}"}
            await pipeline.eventually(read, lambda p: p[1] == ips(2, 3) and p[3] == ips(1, 2), timeout=GRACE_S / 2)
            await pipeline.eventually(read, lambda p: p[1] == ips(3) and p[3] == ips(1), timeout=30)
            assert sorted(await pipeline.table("overlay")) == [f"dcos/{agent_id(1)}", f"dcos/{agent_id(3)}"]
            # Agent 2's own node lost its lease: its device and CNI config went with it.
            await pipeline.eventually(lambda: asyncio.to_thread(kernel_report, cluster, 2, []),
                                      lambda r: r["vtep"]["kernel"] is None and not any(r["unexpected"].values()), timeout=15)
            assert not (cluster.config_dir(2) / "dcos.conflist").exists()
