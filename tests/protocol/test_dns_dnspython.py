"""dnspython's async client against the running DnsServer, over UDP and TCP."""

import asyncio

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from .conftest import BIG, BIG_ADDRESSES, serve
from tests.protocol.loopback import has_ipv6_loopback

TIMEOUT = 2.0


def addresses(reply) -> list[str]:
    return sorted(rd.address for rrset in reply.answer for rd in rrset)


async def test_udp_and_tcp_answer_authoritatively(dns_server):
    query = dns.message.make_query("Web.Marathon.Mesos.", "A")
    for send in (dns.asyncquery.udp, dns.asyncquery.tcp):
        reply = await send(query, dns_server.host, port=dns_server.port, timeout=TIMEOUT)
        assert reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.AA
        assert addresses(reply) == ["10.0.0.1", "10.0.0.2"]
    assert dns_server.server.counters.queries == 2 and dns_server.server.counters.answered == 2


async def test_nxdomain_and_nodata_carry_the_soa(dns_server):
    for name, rdtype, rcode in (("nope.marathon.mesos.", "A", dns.rcode.NXDOMAIN),
                                ("web.marathon.mesos.", "AAAA", dns.rcode.NOERROR)):
        reply = await dns.asyncquery.udp(dns.message.make_query(name, rdtype), dns_server.host,
                                         port=dns_server.port, timeout=TIMEOUT)
        assert reply.rcode() == rcode and reply.flags & dns.flags.AA and not reply.answer
        assert [rrset.rdtype for rrset in reply.authority] == [dns.rdatatype.SOA]
        assert reply.authority[0].name.to_text() == "mesos."
    assert dns_server.server.counters.nxdomain == 1


async def test_edns_4096_gets_all_in_one_udp_reply_and_512_falls_back_to_tcp(dns_server):
    big = dns.message.make_query(BIG, "A", use_edns=0, payload=4096)
    reply = await dns.asyncquery.udp(big, dns_server.host, port=dns_server.port, timeout=TIMEOUT)
    assert not reply.flags & dns.flags.TC and addresses(reply) == sorted(BIG_ADDRESSES)

    small = dns.message.make_query(BIG, "A")  # no EDNS: 512
    cut = await dns.asyncquery.udp(small, dns_server.host, port=dns_server.port, timeout=TIMEOUT)
    assert cut.flags & dns.flags.TC and not cut.answer and cut.question == small.question
    reply, used_tcp = await dns.asyncquery.udp_with_fallback(
        small, dns_server.host, port=dns_server.port, timeout=TIMEOUT)
    assert used_tcp and addresses(reply) == sorted(BIG_ADDRESSES)
    assert dns_server.server.counters.truncated == 2


async def test_several_queries_on_one_tcp_connection(dns_server):
    queries = [dns.message.make_query(name, "A") for name in ("web.marathon.mesos.", BIG, "nope.mesos.")]
    reader, writer = await asyncio.open_connection(dns_server.host, dns_server.port)
    try:
        # pipelined: all three written before any reply is read
        writer.write(b"".join(len(w).to_bytes(2, "big") + w for w in (q.to_wire() for q in queries)))
        await writer.drain()
        for query in queries:
            size = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), TIMEOUT), "big")
            reply = dns.message.from_wire(await asyncio.wait_for(reader.readexactly(size), TIMEOUT))
            assert reply.id == query.id and reply.question == query.question
        assert reply.rcode() == dns.rcode.NXDOMAIN
    finally:
        writer.close()
    assert dns_server.server.counters.tcp_connections == 1


async def test_idle_tcp_connections_are_closed():
    running = await serve(tcp_idle_timeout=0.2)
    try:
        reader, writer = await asyncio.open_connection(running.host, running.port)
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""  # closed by the server
        writer.close()
    finally:
        await running.server.stop()


async def test_ready_spartan_only_once_ready():
    running = await serve(ready=False)
    try:
        query = dns.message.make_query("ready.spartan.", "A")
        for name in ("ready.spartan.", "web.marathon.mesos.", "nope.marathon.mesos."):
            reply = await dns.asyncquery.udp(dns.message.make_query(name, "A"), running.host,
                                             port=running.port, timeout=TIMEOUT)
            assert reply.rcode() == dns.rcode.SERVFAIL  # never NXDOMAIN before catch-up
        running.zones.ready = True
        reply = await dns.asyncquery.udp(query, running.host, port=running.port, timeout=TIMEOUT)
        assert reply.rcode() == dns.rcode.NOERROR and addresses(reply) == ["127.0.0.1"]
        assert running.server.counters.servfail == 3
    finally:
        await running.server.stop()


async def test_forward_hook_answers_what_is_not_ours():
    async def forward(forwarding):  # a stand-in upstream: one fixed address
        reply = dns.message.make_response(dns.message.from_wire(forwarding.query))
        reply.answer.append(dns.rrset.from_text(reply.question[0].name, 30, "IN", "A", "192.0.2.7"))
        await asyncio.sleep(0)
        return reply.to_wire()

    running = await serve(forward=forward)
    try:
        query = dns.message.make_query("www.example.com.", "A")
        for send in (dns.asyncquery.udp, dns.asyncquery.tcp):
            reply = await send(query, running.host, port=running.port, timeout=TIMEOUT)
            assert addresses(reply) == ["192.0.2.7"]
        assert running.server.counters.forwarded == 2
    finally:
        await running.server.stop()


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback (::1) on this machine")
async def test_ipv6_loopback():
    running = await serve("::1")
    try:
        query = dns.message.make_query("web.marathon.mesos.", "A")
        for send in (dns.asyncquery.udp, dns.asyncquery.tcp):
            reply = await send(query, "::1", port=running.port, timeout=TIMEOUT)
            assert addresses(reply) == ["10.0.0.1", "10.0.0.2"]
    finally:
        await running.server.stop()
