"""The node's dns role against a real Kafka: the dns topic into answers, gated on a ready
processor mark in the status topic, with catch-up first."""

from __future__ import annotations

import asyncio
import time
import uuid

import aiohttp
import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import pytest
from confluent_kafka import Producer

from appliers.node import Node
from appliers.options import NodeOptions
from runtime.kafka.topics import ensure_topics
from runtime.kafka.writer import KafkaSink
from schemas import codec
from schemas.dns import RecordSet, record_set_key
from schemas.headers import Observation
from schemas.status import PROCESSOR_KEY, Mark
from tests.integration.pipeline import new_catalog

pytestmark = pytest.mark.kafka

WEB_A = RecordSet("web.marathon.mesos.", "A", 60, ["10.0.1.5", "10.0.1.6"], "marathon", ["web.1", "web.2"])
WEB_SRV = RecordSet("_web._tcp.marathon.mesos.", "SRV", 60,
                    ["0 1 31000 web-abcde-s1.marathon.slave.mesos."], "marathon", ["web.1"])
AUTOIP = RecordSet("web.marathon.autoip.dcos.thisdcos.directory.", "A", 5, ["10.0.1.5"], "marathon", ["web.1"])


def node_options(bootstrap: str, catalog, **dns) -> NodeOptions:
    return NodeOptions(bootstrap, catalog, "test", "10.0.0.9", roles=("dns",), dns_listen=("127.0.0.1", 0), **dns)


def ready_mark() -> bytes:
    now = time.time()
    return codec.encode(Mark("processor", "test-processor", now, now, True, synced_at=now, ready=True))


def publish(sink, catalog, *record_sets: RecordSet, tombstones: tuple[str, ...] = (), raw: dict | None = None,
            mark: bool = False):
    topic = catalog.topic("dns")
    headers = Observation.now().headers(topic.schema_id)
    for record_set in record_sets:
        sink.publish(topic.name, record_set_key(record_set.name, record_set.type), codec.encode(record_set), headers)
    for key in tombstones:
        sink.publish(topic.name, key, None, headers)
    for key, value in (raw or {}).items():
        sink.publish(topic.name, key, value, headers)
    if mark:
        status = catalog.topic("status")
        sink.publish(status.name, PROCESSOR_KEY, ready_mark(), Observation.now().headers(status.schema_id))
    sink.flush()


async def ask(node: Node, name: str, rdtype: str = "A"):
    host, port = node.dns.role.server.address[:2]
    return await dns.asyncquery.udp(dns.message.make_query(name, rdtype), host, port=port, timeout=2)


async def eventually(check, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def test_catch_up_then_changes_then_tombstones(kafka_bootstrap):
    catalog = new_catalog()
    await asyncio.to_thread(ensure_topics, kafka_bootstrap, catalog)
    sink = KafkaSink(kafka_bootstrap)
    # One good table, plus two bad record sets that must be skipped without harming the rest.
    broken = RecordSet("bad.marathon.mesos.", "A", 60, ["not-an-ip"])
    publish(sink, catalog, WEB_A, WEB_SRV, AUTOIP, broken, raw={"junk.marathon.mesos./A": b'{"name": 1}'}, mark=True)
    node = Node(node_options(kafka_bootstrap, catalog, dns_http=("127.0.0.1", 0)))
    stop = asyncio.Event()
    task = asyncio.create_task(node.run(stop))
    try:
        await asyncio.wait_for(node.dns.ready.wait(), 60)
        reply = await ask(node, "WEB.marathon.mesos.")
        assert reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.AA
        assert sorted(rr.address for rr in reply.answer[0]) == ["10.0.1.5", "10.0.1.6"]
        assert (node.dns.progress.read, node.dns.progress.total) == (5, 5) and node.dns.refused == 2
        srv = await ask(node, "_web._tcp.marathon.mesos.", "SRV")
        assert [rr.to_text() for rr in srv.answer[0]] == ["0 1 31000 web-abcde-s1.marathon.slave.mesos."]
        assert (await ask(node, "bad.marathon.mesos.")).rcode() == dns.rcode.NXDOMAIN
        here = await ask(node, "thisnode.thisdcos.directory.")
        assert [rr.address for rr in here.answer[0]] == ["10.0.0.9"]
        assert [rr.address for rr in (await ask(node, "ready.spartan.")).answer[0]] == ["127.0.0.1"]

        # A change replaces the whole set; a tombstone removes it.
        publish(sink, catalog, RecordSet("web.marathon.mesos.", "A", 60, ["10.0.1.7"], "marathon", ["web.3"]),
                tombstones=(record_set_key(AUTOIP.name, AUTOIP.type),))

        async def changed():
            reply = await ask(node, "web.marathon.mesos.")
            assert [rr.address for rr in reply.answer[0]] == ["10.0.1.7"]
            gone = await ask(node, AUTOIP.name)
            assert gone.rcode() == dns.rcode.NXDOMAIN

        await eventually(changed)
        host, port = node.dns.role.http.address[:2]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://{host}:{port}/v1/hosts/web.marathon.mesos") as response:
                assert await response.json() == [{"host": "web.marathon.mesos.", "ip": "10.0.1.7"}]
        assert sorted(node.dns.role.record_sets) == [record_set_key(WEB_SRV.name, "SRV"), record_set_key(WEB_A.name, "A")]
        assert len(node.dns.convergence_s) >= 2 and all(0 <= s < 15 for s in node.dns.convergence_s)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        sink.close()


async def test_servfail_without_a_processor_mark_then_exact_answers_after_the_marks_transaction(kafka_bootstrap):
    """Cold start: an empty dns topic and no processor mark is not "caught up". Then the
    processor's transaction (records and its ready mark together) makes the node ready."""
    catalog = new_catalog()
    await asyncio.to_thread(ensure_topics, kafka_bootstrap, catalog)
    node = Node(node_options(kafka_bootstrap, catalog))
    stop = asyncio.Event()
    task = asyncio.create_task(node.run(stop))
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "transactional.id": f"test-{uuid.uuid4().hex}",
                         "partitioner": "murmur2_random"})
    try:
        await asyncio.wait_for(node.dns.caught_up.wait(), 60)
        await asyncio.sleep(0.5)
        for name in ("web.marathon.mesos.", "nothing.marathon.mesos.", "ready.spartan."):
            assert (await ask(node, name)).rcode() == dns.rcode.SERVFAIL
        assert not node.dns.ready.is_set()

        await asyncio.to_thread(producer.init_transactions, 30)
        producer.begin_transaction()
        dns_topic, status = catalog.topic("dns"), catalog.topic("status")
        for record_set in (WEB_A, AUTOIP):
            producer.produce(dns_topic.name, key=record_set_key(record_set.name, record_set.type).encode(),
                             value=codec.encode(record_set), headers=Observation.now().headers(dns_topic.schema_id))
        producer.produce(status.name, key=PROCESSOR_KEY.encode(), value=ready_mark(),
                         headers=Observation.now().headers(status.schema_id))
        await asyncio.to_thread(producer.commit_transaction, 30)

        await asyncio.wait_for(node.dns.ready.wait(), 30)
        web = await ask(node, "web.marathon.mesos.")
        assert sorted(rr.to_text() for rrset in web.answer for rr in rrset) == ["10.0.1.5", "10.0.1.6"]
        autoip = await ask(node, AUTOIP.name)
        assert [rr.to_text() for rrset in autoip.answer for rr in rrset] == ["10.0.1.5"]
        assert (await ask(node, "nothing.marathon.mesos.")).rcode() == dns.rcode.NXDOMAIN
        assert [rr.address for rr in (await ask(node, "ready.spartan.")).answer[0]] == ["127.0.0.1"]
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
