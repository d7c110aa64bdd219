"""DNS end to end against a real Kafka: simulator -> producer -> processor (faust) -> dns topic
-> a node's dns role -> answers over the wire, with a real dnsmasq as the upstream."""

from __future__ import annotations

import asyncio
import contextlib
import shutil

import dns.asyncquery
import dns.message
import dns.rcode
import pytest

from appliers.node import Node
from appliers.options import NodeOptions
from runtime.kafka.topics import ensure_topics
from runtime.kafka.writer import KafkaSink
from runtime.ports import free_udp_and_tcp_port
from schemas import codec
from schemas.headers import Observation
from schemas.overlay import Lease, lease_key
from tests.integration.pipeline import Pipeline, RunningProcessor, changes_of
from tests.scenarios.mesos_fixtures import FIXTURES
from tests.unit.dns_derive.scenarios import expected_zone, records_of_zone

pytestmark = pytest.mark.kafka

OPERATOR_API = FIXTURES / "mesos-operator-api" / "operator-api.json"
DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


def zone_of(table: dict[str, dict]) -> list[str]:
    return sorted(f"{v['name']} {v['ttl']} IN {v['type']} {rdata}" for v in table.values() for rdata in v["rdata"])


def without_leader_port(lines: list[str]) -> list[str]:
    """The simulated master listens on a free port, not the fixture's 5050: the _leader SRV
    records carry it, everything else must be exactly the golden zone."""
    return [" ".join(line.split(" ")[:6] + ["PORT"] + line.split(" ")[7:]) if line.startswith("_leader.") else line
            for line in lines]


@contextlib.asynccontextmanager
async def dnsmasq_upstream():
    """dnsmasq on a free loopback port, answering www.outside.test with 192.0.2.80. A port can
    still be taken between the probe and dnsmasq's bind: then dnsmasq exits, and another port
    is tried (bounded)."""
    for _ in range(5):
        port = free_udp_and_tcp_port()
        process = await asyncio.create_subprocess_exec(
            DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", f"--port={port}",
            "--listen-address=127.0.0.1", "--bind-interfaces", "--pid-file=", "--log-facility=-",
            "--address=/www.outside.test/192.0.2.80", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        for _ in range(100):  # bounded: up to 5 s for dnsmasq to bind
            if process.returncode is not None:
                break
            try:
                await dns.asyncquery.udp(dns.message.make_query("www.outside.test.", "A"), "127.0.0.1", port=port, timeout=0.05)
                break
            except Exception:
                await asyncio.sleep(0.05)
        if process.returncode is None:
            break
        await process.wait()
    else:
        raise RuntimeError("dnsmasq did not start on any of 5 ports")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.wait(), 10)


async def ask(node: Node, name: str, rdtype: str = "A"):
    host, port = node.dns.role.server.address[:2]
    return await dns.asyncquery.udp(dns.message.make_query(name, rdtype), host, port=port, timeout=3)


async def answers(role: Node, name: str, rdtype: str = "A") -> list[str] | int:
    """The sorted answer texts, or the rcode when there is no answer."""
    reply = await ask(role, name, rdtype)
    if reply.rcode() != dns.rcode.NOERROR or not reply.answer:
        return reply.rcode()
    return sorted(rr.to_text() for rrset in reply.answer for rr in rrset)


def recorded_leases() -> list[Lease]:
    """The leases the recorded DC/OS cluster held, read off its tasks' overlay addresses
    (S0's containers are in 9.0.2.0/24 and fd01:b::2:0:0:0/80, S1's in 9.0.1.0/24): seeded into
    the overlay topic, as an operator moving from DC/OS would, so the processor keeps them and
    the DNS lease check passes the fixture's addresses. Wayfinder's own fresh leases would give
    other subnets, and the fixture's overlay names would be rejected."""
    found = []
    for agent, ip, index, vtep in (("S0", "172.17.0.4", 2, 1), ("S1", "172.17.0.3", 1, 2)):
        agent_id = f"30257977-0153-499d-a5b0-35afd842ef4d-{agent}"
        common = dict(agent_id=agent_id, agent_ip=ip, vtep_ip=f"44.128.0.{vtep}", vtep_prefix=20,
                      vtep_mac=f"70:b3:d5:80:00:{vtep:02x}", vtep_ip6=f"fd01:a::{vtep}", vtep_prefix6=64)
        found.append(Lease(overlay="dcos", subnet=f"9.0.{index}.0/24", mesos_subnet=f"9.0.{index}.0/25",
                           docker_subnet=f"9.0.{index}.128/25", **common))
        found.append(Lease(overlay="dcos6", subnet=f"fd01:b:0:0:{index}::/80", mesos_subnet=f"fd01:b:0:0:{index}::/81",
                           docker_subnet=f"fd01:b::{index}:8000:0:0/81", **common))
    return found


def seed_leases(pipeline: Pipeline, leases: list[Lease]) -> None:
    ensure_topics(pipeline.bootstrap, pipeline.catalog)
    topic = pipeline.catalog.topic("overlay")
    sink = KafkaSink(pipeline.bootstrap, client_id="dns-e2e-leases")
    for lease in leases:
        sink.publish(topic.name, lease_key(lease.overlay, lease.agent_id), codec.encode(lease),
                     Observation.now().headers(topic.schema_id))
    sink.flush()


async def test_fixture_zone_then_launch_and_kill_answered_by_the_node(kafka_bootstrap):
    async with Pipeline(kafka_bootstrap, mesos_state=OPERATOR_API, marathon_url=None) as pipeline, dnsmasq_upstream() as upstream:
        await asyncio.to_thread(seed_leases, pipeline, recorded_leases())
        golden = records_of_zone(expected_zone(OPERATOR_API, ""))
        # The processor leaves out dcos-dns' copy of the mesos zone; nodes answer it as an alias.
        published = [line for line in golden if not line.split(" ")[0].endswith(".mesos.thisdcos.directory.")]
        assert len(published) < len(golden)
        async with RunningProcessor(pipeline):
            await pipeline.eventually(lambda: pipeline.table("dns"),
                                      lambda t: without_leader_port(zone_of(t)) == without_leader_port(published),
                                      timeout=40)

            role = Node(NodeOptions(kafka_bootstrap, pipeline.catalog, "e2e", "10.0.0.9", roles=("dns",),
                                    dns_listen=("127.0.0.1", 0), upstreams=(upstream,)))
            stop = asyncio.Event()
            node = asyncio.create_task(role.run(stop))
            try:
                await asyncio.wait_for(role.dns.ready.wait(), 60)
                await pipeline.eventually(lambda: answers(role, "ready.spartan."), lambda a: a == ["127.0.0.1"])
                # Every A record of the fixture's full view answers as the golden zone says,
                # the copies under mesos.thisdcos.directory included.
                for line in golden:
                    name, _, _, kind, value = line.split(" ", 4)
                    if kind == "A":
                        assert value in await answers(role, name), line
                assert await answers(role, "www.outside.test.") == ["192.0.2.80"]  # forwarded to dnsmasq

                app = {"id": "/shop/web", "instances": 1, "portDefinitions": [{"port": 0, "name": "http"}]}
                launched = await pipeline.control("POST", "/sim/apps", app)
                (running,) = changes_of(launched, state="TASK_RUNNING")
                agent_ip = (await pipeline.table("agents"))[running["agent_id"]]["ip"]
                web = await pipeline.eventually(lambda: answers(role, "web-shop.marathon.mesos."),
                                                lambda a: a == [agent_ip])  # host networking: the agent
                assert await answers(role, "web-shop.marathon.agentip.dcos.thisdcos.directory.") == web
                srv = await answers(role, "_web-shop._tcp.marathon.mesos.", "SRV")
                assert len(srv) == 1 and srv[0].startswith("0 1 ") and ".marathon.mesos." in srv[0]

                await pipeline.control("DELETE", f"/sim/tasks/{running['task_id']}")
                await pipeline.eventually(lambda: answers(role, "web-shop.marathon.mesos."),
                                          lambda a: a == dns.rcode.NXDOMAIN)
                assert await answers(role, "_web-shop._tcp.marathon.mesos.", "SRV") == dns.rcode.NXDOMAIN
                assert len(role.dns.convergence_s) > 0
            finally:
                stop.set()
                await asyncio.wait_for(node, 30)

        # A restarted processor publishes nothing new.
        before = len(await pipeline.log("dns"))
        async with RunningProcessor(pipeline):
            await asyncio.sleep(2)
        assert len(await pipeline.log("dns")) == before


DNS_HOSTNAME = FIXTURES / "mesos-operator-api" / "dns-hostname.json"


async def test_names_that_cannot_be_published_go_to_rejections(kafka_bootstrap):
    """An agent known only by host name: its names are left out and each refusal is in
    `rejections`, exactly as the golden zone's comments list them; every other name is there."""
    async with Pipeline(kafka_bootstrap, mesos_state=DNS_HOSTNAME, marathon_url=None) as pipeline:
        zone = expected_zone(DNS_HOSTNAME, "")
        published = [line for line in records_of_zone(zone)
                     if not line.split(" ")[0].endswith(".mesos.thisdcos.directory.")]
        refused = sorted(line.removeprefix("; rejected ") for line in zone.splitlines() if line.startswith("; rejected "))
        assert refused
        async with RunningProcessor(pipeline):
            await pipeline.eventually(lambda: pipeline.table("dns"),
                                      lambda t: without_leader_port(zone_of(t)) == without_leader_port(published),
                                      timeout=40)
            found = await pipeline.eventually(
                lambda: pipeline.values("rejections"),
                lambda v: len([r for r in v if r["source"] == "dns"]) >= len(refused))
        dns_rejections = sorted(f"{r['what'].removeprefix('DNS name of ')}: {r['excerpt']}: {r['why']}"
                                for r in found if r["source"] == "dns")
        assert dns_rejections == refused
