"""The node's dns role against a real Kafka: the dns topic into answers, with catch-up first."""

from __future__ import annotations

import asyncio
import time

import aiohttp

import dns.asyncquery
import dns.message
import dns.rcode
import pytest

from appliers.dns.role import DnsRole
from appliers.options import NodeOptions
from runtime.kafka.topics import ensure_topics
from runtime.kafka.writer import KafkaSink
from schemas import codec
from schemas.dns import RecordSet, record_set_key
from schemas.headers import Observation
from tests.integration.pipeline import new_catalog

pytestmark = pytest.mark.kafka

WEB_A = RecordSet("web.marathon.mesos.", "A", 60, ["10.0.1.5", "10.0.1.6"], "marathon", ["web.1", "web.2"])
WEB_SRV = RecordSet("_web._tcp.marathon.mesos.", "SRV", 60,
                    ["0 1 31000 web-abcde-s1.marathon.slave.mesos."], "marathon", ["web.1"])
AUTOIP = RecordSet("web.marathon.autoip.dcos.thisdcos.directory.", "A", 5, ["10.0.1.5"], "marathon", ["web.1"])


def node_options(bootstrap: str, catalog, **dns) -> NodeOptions:
    return NodeOptions(bootstrap, catalog, "test", "10.0.0.9", roles=("dns",), dns_listen=("127.0.0.1", 0), **dns)


def publish(sink, catalog, *record_sets: RecordSet, tombstones: tuple[str, ...] = (), raw: dict | None = None):
    topic = catalog.topic("dns")
    headers = Observation.now().headers(topic.schema_id)
    for record_set in record_sets:
        sink.publish(topic.name, record_set_key(record_set.name, record_set.type), codec.encode(record_set), headers)
    for key in tombstones:
        sink.publish(topic.name, key, None, headers)
    for key, value in (raw or {}).items():
        sink.publish(topic.name, key, value, headers)
    sink.flush()


async def ask(role: DnsRole, name: str, rdtype: str = "A"):
    host, port = role.server.address[:2]
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
    publish(sink, catalog, WEB_A, WEB_SRV, AUTOIP, broken,
            raw={"junk.marathon.mesos./A": b'{"name": 1}'})
    role = DnsRole(node_options(kafka_bootstrap, catalog, dns_http=("127.0.0.1", 0)))
    stop = asyncio.Event()
    task = asyncio.create_task(role.run(stop))
    try:
        await asyncio.wait_for(role.caught_up.wait(), 60)

        async def caught_up_answers():
            reply = await ask(role, "WEB.marathon.mesos.")
            assert reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.AA
            assert sorted(rr.address for rr in reply.answer[0]) == ["10.0.1.5", "10.0.1.6"]

        await eventually(caught_up_answers)
        assert (role.progress.read, role.progress.total) == (5, 5) and role.skipped == 2
        srv = await ask(role, "_web._tcp.marathon.mesos.", "SRV")
        assert [rr.to_text() for rr in srv.answer[0]] == ["0 1 31000 web-abcde-s1.marathon.slave.mesos."]
        assert (await ask(role, "bad.marathon.mesos.")).rcode() == dns.rcode.NXDOMAIN
        here = await ask(role, "thisnode.thisdcos.directory.")
        assert [rr.address for rr in here.answer[0]] == ["10.0.0.9"]
        assert [rr.address for rr in (await ask(role, "ready.spartan.")).answer[0]] == ["127.0.0.1"]

        # A change replaces the whole set; a tombstone removes it.
        publish(sink, catalog, RecordSet("web.marathon.mesos.", "A", 60, ["10.0.1.7"], "marathon", ["web.3"]),
                tombstones=(record_set_key(AUTOIP.name, AUTOIP.type),))

        async def changed():
            reply = await ask(role, "web.marathon.mesos.")
            assert [rr.address for rr in reply.answer[0]] == ["10.0.1.7"]
            gone = await ask(role, AUTOIP.name)
            assert gone.rcode() == dns.rcode.NXDOMAIN

        await eventually(changed)
        host, port = role.http.address[:2]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://{host}:{port}/v1/hosts/web.marathon.mesos") as response:
                assert await response.json() == [{"host": "web.marathon.mesos.", "ip": "10.0.1.7"}]
        assert sorted(role.record_sets) == [record_set_key(WEB_SRV.name, "SRV"), record_set_key(WEB_A.name, "A")]
        assert len(role.convergence_s) >= 2 and all(0 <= s < 15 for s in role.convergence_s)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        sink.close()


async def test_cluster_names_answer_servfail_until_the_other_roles_caught_up(kafka_bootstrap):
    catalog = new_catalog()
    await asyncio.to_thread(ensure_topics, kafka_bootstrap, catalog)
    sink = KafkaSink(kafka_bootstrap)
    publish(sink, catalog, WEB_A)
    role = DnsRole(node_options(kafka_bootstrap, catalog))
    stop, other_role = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(role.run(stop, [other_role]))
    try:
        await asyncio.wait_for(role.caught_up.wait(), 60)
        # Caught up itself, but another role is still catching up: never NXDOMAIN, never ready.
        for name in ("web.marathon.mesos.", "nothing.marathon.mesos.", "ready.spartan."):
            assert (await ask(role, name)).rcode() == dns.rcode.SERVFAIL
        other_role.set()

        async def ready():
            assert (await ask(role, "ready.spartan.")).rcode() == dns.rcode.NOERROR
            assert (await ask(role, "nothing.marathon.mesos.")).rcode() == dns.rcode.NXDOMAIN

        await eventually(ready)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        sink.close()
