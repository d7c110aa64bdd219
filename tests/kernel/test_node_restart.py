"""Restarting the node process rebuilds the identical kernel state without dropping established
connections.

A real `vips` table in Kafka (records published directly), the node's l4lb role programming the
hub namespace of the kernel tests' throw-away hosts (tests/kernel/conftest.py), a long-lived TCP connection
from the client namespace through the VIP to a backend. The node stops, the kernel's ruleset is
read, a new node starts: the ruleset it leaves must equal the one before (sets, maps and rules
compared by content, handles ignored), and the connection must still carry data both ways.
Each node's metrics (a scrape of its NodeCollector) count what its kernel holds.

Two restarts: one onto an untouched kernel (the new node must find nothing to change), and one
where a foreign set was added to our table while no node ran, so the new node's start-up sync
has to replace the whole table (`add table; delete table; table {...}` in one transaction)
underneath the established connection.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket

import pytest

from appliers.node import Node, NodeOptions
from runtime.kafka.topics import ensure_topics
from runtime.kafka.writer import KafkaSink
from schemas import codec
from schemas.catalog import Catalog
from schemas.headers import Observation
from schemas.l4lb import Backend, Vip
from simulator.hosts import BACKENDS, TCP_PORT, UDP_PORT, Hosts, sh
from tests.unit.metrics.scrape import scrape, value

pytestmark = pytest.mark.kafka

WEB = Vip("tcp", "11.0.0.7", 80, [Backend(ip, TCP_PORT, 1, f"task-{name}") for name, ip in BACKENDS.items()])
DNS = Vip("udp", "11.0.0.7", 53, [Backend(ip, UDP_PORT, 1, f"task-{name}") for name, ip in list(BACKENDS.items())[:2]])
WEB6 = Vip("tcp", "fd01:c::7", 80, [Backend(f"fd00:200::{ip.rsplit('.', 1)[1]}", TCP_PORT, 1, f"task-{name}6")
                                   for name, ip in BACKENDS.items()])
FAMILIES = ("ip", "ip6")


@pytest.fixture(scope="module")
def hosts(node):
    """The kernel tests' throw-away hub, client and backends (tests/kernel/conftest.py)."""
    return node


@pytest.fixture
def vips_topic(kafka_bootstrap) -> Catalog:
    """A fresh catalog whose vips topic holds WEB, DNS and WEB6."""
    catalog = Catalog(f"l4conv{secrets.token_hex(4)}")
    ensure_topics(kafka_bootstrap, catalog)
    topic = catalog.topic("vips")
    sink = KafkaSink(kafka_bootstrap, client_id="test-node-restart")
    try:
        for vip in (WEB, DNS, WEB6):
            key = f"{vip.protocol}/{vip.ip}/{vip.port}"
            sink.publish(topic.name, key, codec.encode(vip), Observation.now().headers(topic.schema_id))
    finally:
        sink.close()
    assert sink.delivered == 3
    return catalog


def _without_handles(value):
    if isinstance(value, dict):
        return {k: _without_handles(v) for k, v in value.items() if k != "handle"}
    if isinstance(value, list):
        return [_without_handles(v) for v in value]
    return value


def ruleset(hosts: Hosts) -> dict:
    """Our tables as the hub's kernel holds them: per family, every set and map with its sorted
    elements, and every chain with its rules, handles left out."""
    tables = {}
    for family in FAMILIES:
        listing = json.loads(sh("nft", "-j", "list", "table", family, "wayfinder", ns=hosts.hub))["nftables"]
        contents: dict = {"set": {}, "map": {}, "chain": {}, "rules": {}}
        for item in listing:
            (kind, body), = item.items()
            body = _without_handles(body)
            if kind in ("set", "map"):
                elements = sorted(json.dumps(e, sort_keys=True) for e in body.pop("elem", []))
                contents[kind][body["name"]] = {"definition": body, "elements": elements}
            elif kind == "chain":
                contents["chain"][body["name"]] = body
            elif kind == "rule":
                contents["rules"].setdefault(body["chain"], []).append(body["expr"])
        tables[family] = contents
    return tables


def endpoints(tables: dict, family: str) -> set[tuple[str, str, int, int, str, int]]:
    """The `endpoints` map as (vip, proto, port, slot, backend ip, backend port)."""
    out = set()
    for element in tables[family]["map"]["endpoints"]["elements"]:
        key, value = json.loads(element)
        vip, proto, port, slot = key["concat"]
        backend, backend_port = value["concat"]
        out.add((vip, proto, port, slot, backend, backend_port))
    return out


def node_options(bootstrap: str, catalog: Catalog, hosts: Hosts) -> NodeOptions:
    return NodeOptions(bootstrap=bootstrap, catalog=catalog, node_id="hub", agent_ip="10.200.2.1",
                       roles=("l4lb",), netns=hosts.hub, resync_interval=3600.0)


async def run_node(options: NodeOptions) -> tuple[Node, asyncio.Event, asyncio.Task]:
    node, stop = Node(options), asyncio.Event()
    task = asyncio.create_task(node.run(stop))
    caught_up = asyncio.create_task(node.l4lb.caught_up.wait())
    done, _ = await asyncio.wait({task, caught_up}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    if caught_up not in done:
        caught_up.cancel()
        stop.set()
        await asyncio.wait_for(task, 30)  # raises what stopped the node, if it failed
        raise TimeoutError("the node did not catch up on the vips topic within 60 s")
    return node, stop, task


async def stop_node(stop: asyncio.Event, task: asyncio.Task) -> None:
    stop.set()
    await asyncio.wait_for(task, 30)


def l4lb_metrics(node: Node) -> tuple[float, ...]:
    """(VIPs, backends, desired entries, failed passes) as the node's metrics report them."""
    found = scrape(node)
    return (value(found, "wayfinder_l4lb_vips"), value(found, "wayfinder_l4lb_backends"),
            value(found, "wayfinder_role_desired_entries", role="l4lb"),
            value(found, "wayfinder_role_apply_failures_total", role="l4lb"))


# WEB, DNS and WEB6: 3 VIPs, 3 + 2 + 3 backends (weight 1: one slot each), nothing failed.
PROGRAMMED = (3, 8, 3, 0)


def talk(sock: socket.socket) -> str:
    """One line out, the backend's answer (its name) back."""
    sock.sendall(b"ping\n")
    return sock.recv(100).decode().strip()


@pytest.mark.parametrize("while_down", ["nothing", "foreign set added"])
async def test_restarting_the_node_rebuilds_the_identical_kernel_state_without_dropping_connections(
        kafka_bootstrap, hosts, vips_topic, while_down):
    for family in FAMILIES:  # a hub no node has programmed yet
        sh("nft", "delete", "table", family, "wayfinder", ns=hosts.hub, check=False)
    options = node_options(kafka_bootstrap, vips_topic, hosts)
    node, stop, task = await run_node(options)
    try:
        first = node.l4lb.role.applier.history[-1]
        assert first.ok and set(first.rebuilt) == set(FAMILIES)  # a fresh hub: both tables created
        assert l4lb_metrics(node) == PROGRAMMED
        # The long-lived connection, opened while the first node runs.
        sock = await asyncio.to_thread(hosts.connect, "client", WEB.ip, WEB.port)
    finally:
        await stop_node(stop, task)
    try:
        greeting = (await asyncio.to_thread(sock.recv, 100)).decode().split()
        backend = greeting[0]
        assert backend in BACKENDS and greeting[1] == "10.200.2.1"  # masqueraded by the hub
        assert await asyncio.to_thread(talk, sock) == backend

        before = await asyncio.to_thread(ruleset, hosts)
        assert endpoints(before, "ip") == {
            *(("11.0.0.7", "tcp", 80, slot, ip, TCP_PORT) for slot, ip in enumerate(BACKENDS.values())),
            *(("11.0.0.7", "udp", 53, slot, ip, UDP_PORT) for slot, ip in enumerate(list(BACKENDS.values())[:2])),
        }
        assert endpoints(before, "ip6") == {("fd01:c::7", "tcp", 80, slot, f"fd00:200::{ip.rsplit('.', 1)[1]}", TCP_PORT)
                                             for slot, ip in enumerate(BACKENDS.values())}
        assert before["ip"]["set"]["vip_ips"]["elements"] == ['"11.0.0.7"']

        if while_down == "foreign set added":
            sh("nft", "add", "set", "ip", "wayfinder", "intruder", "{ type ipv4_addr; }", ns=hosts.hub)
            assert "intruder" in (await asyncio.to_thread(ruleset, hosts))["ip"]["set"]

        node, stop, task = await run_node(options)
        try:
            start_up = node.l4lb.role.applier.history[-1]
            assert start_up.ok
            if while_down == "nothing":
                assert start_up.text_bytes == 0 and start_up.rebuilt == ()  # nothing to do, nothing done
            else:
                assert start_up.rebuilt == ("ip",)  # the whole ip table replaced, ip6 left alone
            after = await asyncio.to_thread(ruleset, hosts)
            assert after == before
            assert l4lb_metrics(node) == PROGRAMMED  # the new node counts what it found, not what it changed
            # The established connection still carries data both ways, to the same backend.
            for _ in range(3):
                assert await asyncio.to_thread(talk, sock) == backend
            # And new connections are balanced as before.
            seen = await asyncio.to_thread(hosts.spread, "client", WEB.ip, WEB.port, 30)
            assert set(seen) == set(BACKENDS)
        finally:
            await stop_node(stop, task)
    finally:
        sock.close()
