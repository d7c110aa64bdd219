"""Issue 4 end to end: a launch in the simulator becomes a VIP in a node's kernel, and a client
in another namespace reaches every backend through it; a kill drains it again.

simulator -> producer -> Kafka -> processor (faust) -> vips topic -> `wayfinder node` l4lb role
in the hub namespace -> nftables -> backends b1..b3 (tests/kernel/conftest.py topology).
"""

import asyncio
import os
import sys
from pathlib import Path

import orjson
import pytest

import dns.asyncquery
import dns.flags
import dns.message

from appliers.node import Node, NodeOptions
from tests.integration.pipeline import Pipeline, RunningProcessor, changes_of
from simulator.hosts import BACKENDS, TCP_PORT
from tests.scenarios.mesos_fixtures import FIXTURES
from tests.unit.metrics.scrape import scrape, value

pytestmark = pytest.mark.kafka

EMPTY_CLUSTER = FIXTURES / "mesos-state" / "empty.json"
WAYFINDER = str(Path(sys.executable).with_name("wayfinder"))


class RunningNode:
    """`wayfinder node --roles l4lb,dns`: the kernel work goes into the hub namespace, while the
    node process and its DNS server stay here, on loopback."""

    def __init__(self, pipeline: Pipeline, netns: str):
        self.node = Node(NodeOptions(bootstrap=pipeline.bootstrap, catalog=pipeline.catalog, node_id="hub",
                                     agent_ip="10.200.2.1", roles=("l4lb", "dns"), netns=netns,
                                     resync_interval=5.0, dns_listen=("127.0.0.1", 0)))
        self.role = self.node.l4lb
        self.pipeline = pipeline
        self.stop = asyncio.Event()

    async def __aenter__(self):
        self.task = asyncio.create_task(self.node.run(self.stop))
        await asyncio.wait_for(self.role.caught_up.wait(), 60)
        await asyncio.wait_for(self.node.dns.ready.wait(), 60)
        return self

    async def resolve(self, name: str) -> list[str]:
        host, port = self.node.dns.role.server.address[:2]
        reply = await dns.asyncquery.udp(dns.message.make_query(name, "A"), host, port=port, timeout=2)
        assert reply.flags & dns.flags.AA
        return sorted(item.address for rrset in reply.answer for item in rrset)

    async def __aexit__(self, *exc):
        self.stop.set()
        await asyncio.wait_for(self.task, 30)


async def programmed(node: Node) -> tuple[float, float]:
    """(VIPs, backends) in the kernel, as the node's metrics report them."""
    found = scrape(node)
    return value(found, "wayfinder_l4lb_vips"), value(found, "wayfinder_l4lb_backends")


def web(table):
    return [v for v in table.values() if v.get("name") == "/e2e/web"]


async def test_a_launch_reaches_the_kernel_and_a_client_reaches_every_backend(kafka_bootstrap, node):
    async with Pipeline(kafka_bootstrap, mesos_state=EMPTY_CLUSTER) as pipeline:
        for name, ip in BACKENDS.items():
            await pipeline.control("POST", "/sim/agents", {"hostname": ip, "id": f"agent-{name}", "port_ranges": [[TCP_PORT, TCP_PORT]]})
        async with RunningProcessor(pipeline), RunningNode(pipeline, node.hub) as running:
            app = {"id": "/e2e/web", "instances": 3, "portDefinitions": [{"port": 0, "labels": {"VIP_0": "/e2e/web:80"}}]}
            launched = await pipeline.control("POST", "/sim/apps", app)
            tasks = {c["agent_id"]: c["task_id"] for c in changes_of(launched, state="TASK_RUNNING")}
            assert sorted(tasks) == ["agent-b1", "agent-b2", "agent-b3"]

            (vip,) = web(await pipeline.eventually(lambda: pipeline.table("vips"), lambda t: len(web(t)) == 1 and len(web(t)[0]["backends"]) == 3))
            assert sorted((b["ip"], b["port"]) for b in vip["backends"]) == sorted((ip, TCP_PORT) for ip in BACKENDS.values())

            # By name, through the node's DNS: the name answers only once the kernel has the VIP.
            name = "e2eweb.marathon.l4lb.thisdcos.directory"
            (address,) = await pipeline.eventually(lambda: running.resolve(name), lambda a: a != [], timeout=20)
            assert address == vip["ip"]
            assert any(k == f"tcp/{address}/80" for k in running.role.role.applier.applied_at)
            assert await programmed(running.node) == (1, 3)

            async def spread():
                return await asyncio.to_thread(node.spread, "client", address, 80, 45)

            seen = await pipeline.eventually(spread, lambda s: set(s) == set(BACKENDS), timeout=20)
            assert sum(seen.values()) == 45

            # Kill b2's task: no new connection goes to b2 once the kernel has the change.
            await pipeline.control("DELETE", f"/sim/tasks/{tasks['agent-b2']}")
            seen = await pipeline.eventually(spread, lambda s: set(s) == {"b1", "b3"}, timeout=20)
            assert sum(seen.values()) == 45
            # b2 drained or removed: two backends left (the count follows the nft commit at once).
            await pipeline.eventually(lambda: programmed(running.node), lambda n: n == (1, 2), timeout=5)

            # The operator's view: topic and kernel agree.
            shown = await asyncio.create_subprocess_exec(
                WAYFINDER, "--log-level", "warning", "vips", "--json", "--netns", node.hub,
                "--bootstrap", pipeline.bootstrap, "--namespace", pipeline.catalog.namespace,
                stdout=asyncio.subprocess.PIPE, env=os.environ.copy())
            out, _ = await asyncio.wait_for(shown.communicate(), 30)
            (entry,) = [e for e in orjson.loads(out) if e["name"] == "/e2e/web"]
            assert entry["programmed"] is True
            assert entry["dns"] == "e2eweb.marathon.l4lb.thisdcos.directory"
            assert sorted(b["ip"] for b in entry["kernel"]) == [BACKENDS["b1"], BACKENDS["b3"]]

            assert len(running.role.convergence_s) >= 2
            assert all(0 <= s < 5 for s in running.role.convergence_s)
