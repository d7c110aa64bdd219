"""Readiness per output against a real Kafka: without a Marathon producer, the default
processor (HAProxy stage included) is ready for `dns` and `vips`, so a node's dns role serves
while its haproxy role waits; once the Marathon producer has synced, haproxy is ready too."""

from __future__ import annotations

import asyncio
from pathlib import Path

import dns.asyncquery
import dns.message
import dns.rcode
import pytest

from appliers.haproxy.process import HAPROXY
from appliers.haproxy.settings import HaproxySettings, SharedPorts
from appliers.node import Node, NodeOptions
from runtime.kafka.status import read_marks
from runtime.ports import free_ports
from schemas.status import PROCESSOR_KEY
from tests.integration.pipeline import Pipeline, RunningProcessor
from tests.scenarios.mesos_fixtures import FIXTURES

pytestmark = pytest.mark.kafka

OPERATOR_API = FIXTURES / "mesos-operator-api" / "operator-api.json"
HAPROXY_WAITS_S = 5.0  # how long the haproxy role is watched not becoming ready


async def answer(node: Node, name: str) -> list[str] | str:
    host, port = node.dns.role.server.address[:2]
    reply = await dns.asyncquery.udp(dns.message.make_query(name, "A"), host, port=port, timeout=2)
    if reply.rcode() != dns.rcode.NOERROR:
        return dns.rcode.to_text(reply.rcode())
    return sorted(rr.to_text() for rrset in reply.answer for rr in rrset)


async def processor_mark(pipeline: Pipeline):
    marks = await asyncio.to_thread(read_marks, pipeline.bootstrap, pipeline.catalog.topic("status").name)
    return marks.get(PROCESSOR_KEY)


async def test_dns_serves_without_marathon_while_haproxy_waits_for_it(kafka_bootstrap, tmp_path: Path):
    if not Path(HAPROXY).exists():
        pytest.skip(f"{HAPROXY} is missing (Debian package haproxy)")
    http, https, appid, stats = free_ports(4)
    settings = HaproxySettings(groups=("external",), ports=SharedPorts(http, https, appid, stats), bind="127.0.0.1",
                               directory=str(tmp_path / "haproxy"), hard_stop_after="5s")
    async with Pipeline(kafka_bootstrap, mesos_state=OPERATOR_API, marathon_url=None) as pipeline, \
            RunningProcessor(pipeline):
        node = Node(NodeOptions(kafka_bootstrap, pipeline.catalog, "per-output", "127.0.0.1", roles=("dns", "haproxy"),
                                dns_listen=("127.0.0.1", 0), haproxy=settings))
        stop = asyncio.Event()
        running = asyncio.create_task(node.run(stop))
        try:
            await asyncio.wait_for(node.dns.ready.wait(), 60)
            assert await answer(node, "ready.spartan.") == ["127.0.0.1"]
            leader = await answer(node, "leader.mesos.")
            assert isinstance(leader, list) and leader, leader  # a cluster name answers, not SERVFAIL

            mark = await processor_mark(pipeline)
            assert {"dns", "vips"} <= set(mark.ready_outputs) and "haproxy" not in mark.ready_outputs, mark
            assert not mark.ready
            await asyncio.sleep(HAPROXY_WAITS_S)
            assert not node.loops["haproxy"].ready.is_set(), "haproxy ready with no Marathon producer"

            # The same cluster's Marathon producer joins: its sync makes haproxy ready too.
            await pipeline.stop_producer()
            await pipeline.start_producer(marathon_url=pipeline.simulator.marathon_url)
            await asyncio.wait_for(node.loops["haproxy"].ready.wait(), 60)
            mark = await pipeline.eventually(lambda: processor_mark(pipeline), lambda m: m.ready)
            assert {"dns", "haproxy", "vips"} <= set(mark.ready_outputs)
        finally:
            stop.set()
            await asyncio.wait_for(running, 30)
