"""Forwarding end to end: dnspython -> our DnsServer -> real dnsmasq upstreams on loopback.

The upstreams (tests/protocol/upstreams.py) listen on fixed ports of this suite's range
(127.0.0.1:31000-31099); our server takes an ephemeral port.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import pytest

from appliers.dns.acl import RecursionAcl
from appliers.dns.answer import Answerer
from appliers.dns.cache import ReplyCache
from appliers.dns.records import record
from appliers.dns.resolver import Forwarder
from appliers.dns.server import DnsServer
from appliers.dns.zone import ZoneSet
from tests.protocol.loopback import has_ipv6_loopback
from tests.protocol.upstreams import (
    MESOS_DNS,
    ZONE_DNS,
    DEFAULT_DNS,
    UNBOUND_DNS,
    BLACK_HOLE,
    BLACK_HOLE_2,
    FAKE,
    CLOSED,
    CLOSED_2,
    PROBES,
    BIG,
    dnsmasq,
    unbound,
    black_hole,
    spoofing_upstream,
    slow_upstream,
)

TIMEOUT = 2.0

# Our own zones leave `mesos.` out: a node that forwards .mesos to the masters' Mesos-DNS.
OWN_ORIGINS = ("thisdcos.directory.", "spartan.", "localhost.")
OWN_RECORDS = [record("web.fw.l4lb.thisdcos.directory.", "A", 5, "11.0.0.7")]


# -- our server -----------------------------------------------------------------------------

class _Clock:
    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def node_dns(forwarder: Forwarder, acl: RecursionAcl | None = None):
    zones = ZoneSet(OWN_ORIGINS, ready=True)
    zones.replace(OWN_RECORDS)
    server = DnsServer(Answerer(zones, forwarder, recursion_acl=acl), "127.0.0.1", 0)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
        await forwarder.close()


def forwarder(*upstreams: int, cache: ReplyCache | None = None, **options) -> Forwarder:
    return Forwarder.from_config([f"127.0.0.1:{port}" for port in upstreams], cache=cache, **options)


async def ask(server: DnsServer, name: str, rdtype: str = "A", *, tcp: bool = False, **make) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, **make)
    send = dns.asyncquery.tcp if tcp else dns.asyncquery.udp
    return await send(query, server.address[0], port=server.address[1], timeout=TIMEOUT)


def addresses(reply) -> list[str]:
    return sorted(rd.address for rrset in reply.answer for rd in rrset if rrset.rdtype == 1)


# -- tests ----------------------------------------------------------------------------------

async def test_a_forwarded_name_is_answered_with_the_upstreams_value():
    async with dnsmasq(DEFAULT_DNS), node_dns(forwarder(DEFAULT_DNS)) as server:
        for tcp in (False, True):
            reply = await ask(server, "Probe.Example.Test.", tcp=tcp)
            assert reply.rcode() == dns.rcode.NOERROR and addresses(reply) == ["10.0.0.3"]
            assert reply.flags & dns.flags.RA and not reply.flags & dns.flags.AA
            assert reply.question[0].name.to_text() == "Probe.Example.Test."
        own = await ask(server, "web.fw.l4lb.thisdcos.directory.")
        assert addresses(own) == ["11.0.0.7"] and own.flags & dns.flags.RA and own.flags & dns.flags.AA


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback (::1) on this machine")
async def test_an_ipv6_upstream():
    fwd = Forwarder.from_config([f"[::1]:{DEFAULT_DNS}"], cache=ReplyCache(capacity=0))
    async with dnsmasq(DEFAULT_DNS, host="::1"), node_dns(fwd) as server:
        for tcp in (False, True):  # no cache: both transports reach the upstream
            assert addresses(await ask(server, "probe.example.test.", tcp=tcp)) == ["10.0.0.3"]
    assert fwd.counters.upstream_queries == 2 and fwd.counters.mismatched == 0


async def test_big_upstream_answers_are_truncated_for_the_client_and_whole_over_tcp():
    async with dnsmasq(DEFAULT_DNS, authoritative=False), node_dns(forwarder(DEFAULT_DNS)) as server:
        small = await ask(server, "big.bulk.test.")  # no EDNS: 512 bytes
        assert small.flags & dns.flags.TC and not small.answer and small.question[0].name.to_text() == "big.bulk.test."
        query = dns.message.make_query("big.bulk.test.", "A")
        reply, used_tcp = await dns.asyncquery.udp_with_fallback(
            query, server.address[0], port=server.address[1], timeout=TIMEOUT)
        assert used_tcp and addresses(reply) == sorted(BIG)
        assert addresses(await ask(server, "big.bulk.test.", use_edns=0, payload=4096)) == sorted(BIG)


async def test_per_zone_routing():
    routes = dict(upstreams=[f"127.0.0.1:{DEFAULT_DNS}"], forward_zones={"corp.test": [f"127.0.0.1:{ZONE_DNS}"]},
                  mesos_upstreams=[f"127.0.0.1:{MESOS_DNS}"])
    async with dnsmasq(MESOS_DNS), dnsmasq(ZONE_DNS), dnsmasq(DEFAULT_DNS), \
            node_dns(Forwarder.from_config(**routes)) as server:
        answered = {name: addresses(await ask(server, name + ".")) for name in PROBES}
    assert answered == {"probe.mesos": ["10.0.0.1"], "probe.corp.test": ["10.0.0.2"],
                        "probe.example.test": ["10.0.0.3"]}


async def test_unbound_as_a_forward_zone_upstream(tmp_path):
    fwd = Forwarder.from_config([f"127.0.0.1:{DEFAULT_DNS}"], {"unbound.test": [f"127.0.0.1:{UNBOUND_DNS}"]})
    async with unbound(UNBOUND_DNS, tmp_path), dnsmasq(DEFAULT_DNS), node_dns(fwd) as server:
        for tcp in (False, True):
            assert addresses(await ask(server, "probe.unbound.test.", tcp=tcp)) == ["10.0.0.4"]
        assert addresses(await ask(server, "probe.example.test.")) == ["10.0.0.3"]
        for _ in range(2):  # the second from the cache: min(SOA TTL 30, MINIMUM 20)
            missing = await ask(server, "nope.unbound.test.", use_edns=0)
            assert missing.rcode() == dns.rcode.NXDOMAIN and missing.edns == 0
            assert [rrset.to_text() for rrset in missing.authority] == [
                "unbound.test. 20 IN SOA ns.unbound.test. hostmaster.unbound.test. 1 3600 600 86400 20"]
    # upstream: probe.unbound.test over UDP, probe.example.test, nope once; cached: the TCP
    # probe (the cache serves both transports) and the second nope
    assert (fwd.counters.upstream_queries, fwd.counters.cache_hits) == (3, 2)


async def test_a_black_holed_upstream_does_not_slow_clients_down():
    async with black_hole(BLACK_HOLE) as hole, dnsmasq(DEFAULT_DNS), \
            node_dns(forwarder(BLACK_HOLE, DEFAULT_DNS, cache=ReplyCache(capacity=0))) as server:
        elapsed = []
        for _ in range(20):
            started = time.perf_counter()
            reply = await ask(server, "probe.example.test.")
            elapsed.append(time.perf_counter() - started)
            assert addresses(reply) == ["10.0.0.3"]
        assert hole.received == 20  # with two upstreams both are always asked
        assert statistics.quantiles(elapsed, n=20)[-1] < 0.2


async def test_a_failed_upstream_drops_out_of_the_choice_of_two():
    # Three upstreams: the best two are asked. Once the black hole's first queries have timed
    # out (in the background, while its partner answered), its score keeps it out.
    fwd = forwarder(BLACK_HOLE, DEFAULT_DNS, ZONE_DNS, cache=ReplyCache(capacity=0), attempt_timeout=0.3)
    async with black_hole(BLACK_HOLE) as hole, dnsmasq(DEFAULT_DNS), dnsmasq(ZONE_DNS), node_dns(fwd) as server:
        for _ in range(10):
            assert (await ask(server, "probe.example.test.")).rcode() == dns.rcode.NOERROR
        await asyncio.sleep(0.5)  # the stragglers time out and count as failures
        assert hole.received > 0 and fwd.counters.upstream_failures == hole.received
        before = hole.received
        for _ in range(20):
            assert (await ask(server, "probe.example.test.")).rcode() == dns.rcode.NOERROR
        assert hole.received == before


async def test_losers_beyond_the_cap_are_cancelled_and_teach_nothing():
    fwd = forwarder(BLACK_HOLE, DEFAULT_DNS, cache=ReplyCache(capacity=0), max_stragglers=0)
    async with black_hole(BLACK_HOLE), dnsmasq(DEFAULT_DNS), node_dns(fwd) as server:
        for _ in range(3):
            assert addresses(await ask(server, "probe.example.test.")) == ["10.0.0.3"]
    assert (fwd.counters.stragglers_cancelled, fwd.counters.upstream_failures) == (3, 0)


async def test_identical_questions_in_flight_share_one_upstream_query():
    fwd = forwarder(FAKE)
    async with slow_upstream() as upstream, node_dns(fwd) as server:
        replies = await asyncio.gather(*(ask(server, "www.example.test.") for _ in range(10)))
        assert [addresses(reply) for reply in replies] == [["192.0.2.80"]] * 10
        assert upstream.queries == 1 and fwd.counters.coalesced == 9
        await asyncio.gather(ask(server, "www.example.test.", tcp=True), ask(server, "other.example.test."))
        assert upstream.queries == 2  # TCP is a cache hit now; the other name is its own query


async def test_all_upstreams_dead_is_servfail_within_the_bound():
    fwd = forwarder(BLACK_HOLE, BLACK_HOLE_2, attempt_timeout=0.5, total_timeout=0.8)
    async with black_hole(BLACK_HOLE), black_hole(BLACK_HOLE_2), node_dns(fwd) as server:
        started = time.perf_counter()
        reply = await ask(server, "probe.example.test.")
        elapsed = time.perf_counter() - started
    assert reply.rcode() == dns.rcode.SERVFAIL and reply.flags & dns.flags.RA
    assert 0.45 < elapsed < 1.0
    assert fwd.counters.servfail == 1


async def test_refused_upstream_ports_fail_fast():
    # Nothing listens: the kernel's ICMP port unreachable ends each attempt at once, and with
    # three upstreams the third is tried after the first two failed.
    fwd = forwarder(CLOSED, CLOSED_2, DEFAULT_DNS, attempt_timeout=1.0, total_timeout=2.0)
    health = fwd.health
    async with dnsmasq(DEFAULT_DNS), node_dns(fwd) as server:
        health.record_failure(fwd.routes.default[2])  # so the two closed ports are chosen first
        started = time.perf_counter()
        reply = await ask(server, "probe.example.test.")
        assert time.perf_counter() - started < 0.5
        assert addresses(reply) == ["10.0.0.3"] and fwd.counters.upstream_queries == 3

    dead = forwarder(CLOSED, CLOSED_2, attempt_timeout=1.0)
    async with node_dns(dead) as server:
        started = time.perf_counter()
        assert (await ask(server, "probe.example.test.")).rcode() == dns.rcode.SERVFAIL
        assert time.perf_counter() - started < 0.5


async def test_cached_answers_outlive_the_upstream_with_decreasing_ttls():
    clock = _Clock()
    fwd = forwarder(DEFAULT_DNS, cache=ReplyCache(clock=clock), attempt_timeout=0.3)
    async with node_dns(fwd) as server:
        async with dnsmasq(DEFAULT_DNS):
            fresh = await ask(server, "probe.example.test.")
            missing = await ask(server, "nope.example.test.")
        assert (addresses(fresh), fresh.answer[0].ttl) == (["10.0.0.3"], 30)
        assert missing.rcode() == dns.rcode.NXDOMAIN and missing.authority[0].ttl == 30
        asked = fwd.counters.upstream_queries
        clock.now += 7  # dnsmasq is gone; seven seconds later
        cached = await ask(server, "PROBE.example.test.", tcp=True)
        assert (addresses(cached), cached.answer[0].ttl) == (["10.0.0.3"], 23)
        assert cached.question[0].name.to_text() == "PROBE.example.test."
        negative = await ask(server, "nope.example.test.")
        assert negative.rcode() == dns.rcode.NXDOMAIN and negative.authority[0].ttl == 23
        assert fwd.counters.upstream_queries == asked and fwd.counters.cache_hits == 2
        clock.now += 30  # expired: the upstream is asked again, and is not there
        assert (await ask(server, "probe.example.test.")).rcode() == dns.rcode.SERVFAIL


async def test_spoofed_replies_are_ignored():
    fwd = forwarder(FAKE, cache=ReplyCache(capacity=0))
    async with spoofing_upstream(), node_dns(fwd) as server:
        for _ in range(3):
            reply = await ask(server, "www.example.test.")
            assert addresses(reply) == ["192.0.2.53"]
    # wrong id and wrong question counted; the racer never got past the connected socket
    assert fwd.counters.mismatched == 6


async def test_clients_outside_the_acl_are_refused_recursion_but_get_cluster_names():
    async with dnsmasq(DEFAULT_DNS), node_dns(forwarder(DEFAULT_DNS), acl=RecursionAcl(["10.0.0.0/8"])) as server:
        refused = await ask(server, "probe.example.test.")
        assert refused.rcode() == dns.rcode.REFUSED and not refused.flags & dns.flags.RA
        own = await ask(server, "web.fw.l4lb.thisdcos.directory.", tcp=True)
        assert addresses(own) == ["11.0.0.7"] and not own.flags & dns.flags.RA
        assert server.counters.forwarded == 0


async def test_dcos_aliases_are_answered_from_our_own_zone():
    fwd = forwarder(BLACK_HOLE)  # a forwarder that would never answer: nothing may reach it
    async with black_hole(BLACK_HOLE) as hole, node_dns(fwd) as server:
        for name in ("web.fw.dclb.thisdcos.directory.", "Web.FW.dclb.thisdcos.global.",
                     "web.fw.l4lb.thisdcos.global."):
            reply = await ask(server, name)
            assert [rrset.to_text() for rrset in reply.answer] == [f"{name} 5 IN A 11.0.0.7"]
            assert reply.flags & dns.flags.AA
    assert hole.received == 0 and fwd.counters.forwarded == 0
