"""The reply cache: lifetimes (positive, RFC 2308 negative, never SERVFAIL), TTLs that count
down while served, LRU bound, and the per-client stamping of a stored reply. Upstream replies
are written with dnspython and what clients get is read back with it."""

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from appliers.dns.cache import Client, ReplyCache
from appliers.dns.wire import question_key

SOA = "ns.example. hostmaster.example. 1 1200 180 1209600 {minimum}"


def upstream_reply(name="www.example.", rdtype="A", *, rcode=dns.rcode.NOERROR, answers=(),
                   authority=(), edns=True, tc=False) -> bytes:
    """What an upstream sends: `answers`/`authority` as zone lines."""
    query = dns.message.make_query(name, rdtype, use_edns=0 if edns else False)
    reply = dns.message.make_response(query)
    reply.set_rcode(rcode)
    for section, lines in ((reply.answer, answers), (reply.authority, authority)):
        for line in lines:
            owner, ttl, _, rtype, rdata = line.split(None, 4)
            section.append(dns.rrset.from_text(owner, int(ttl), "IN", rtype, rdata))
    if tc:
        reply.flags |= dns.flags.TC
    reply.flags |= dns.flags.AA
    return reply.to_wire()


def client_for(name="www.example.", rdtype="A", *, id=4242, edns=None, limit=None, rd=True):
    query = dns.message.make_query(name, rdtype, use_edns=0 if edns else False, payload=edns or 1232)
    query.id = id
    if not rd:
        query.flags &= ~dns.flags.RD
    wire = query.to_wire()
    key = question_key(wire)
    return query, Client(wire, key[3], bool(edns), False, limit or (edns or 512), 4096)


def key_for(name="www.example.", rdtype=1):
    """The cache key of a plain query: (wire name lower case, type, class IN, no DO)."""
    return (question_key(dns.message.make_query(name, rdtype).to_wire())[0], rdtype, 1, False)


def served(cache, stored, name="www.example.", rdtype="A", **client_options) -> dns.message.Message:
    query, client = client_for(name, rdtype, **client_options)
    reply = dns.message.from_wire(stored.render(client, cache.clock()))
    assert reply.id == query.id and reply.question == query.question
    return reply


def zone_lines(message, section="answer"):
    return [f"{rrset.name} {rrset.ttl} {dns.rdatatype.to_text(rrset.rdtype)} {rd}"
            for rrset in getattr(message, section) for rd in rrset]


@pytest.fixture
def cache(clock) -> ReplyCache:
    return ReplyCache(capacity=3, clock=clock, max_ttl=3600, max_negative_ttl=300)


def test_positive_answer_counts_down_and_expires(cache, clock):
    stored = cache.prepare(upstream_reply(answers=["www.example. 30 IN A 192.0.2.1",
                                                   "www.example. 30 IN A 192.0.2.2"],
                                          authority=["example. 3600 IN NS ns.example."]))
    assert stored.lifetime == 30 and cache.keep(key_for(), stored)
    clock.advance(7.9)
    hit = cache.lookup(key_for())
    reply = served(cache, hit)
    assert zone_lines(reply) == ["www.example. 23 A 192.0.2.1", "www.example. 23 A 192.0.2.2"]
    assert zone_lines(reply, "authority") == ["example. 23 NS ns.example."]  # never beyond our lifetime
    clock.advance(22.1)
    assert cache.lookup(key_for()) is None and len(cache) == 0
    assert cache.snapshot() == {"entries": 0, "hits": 1, "misses": 1, "expired": 1, "evicted": 0}


def test_client_stamp(cache):
    stored = cache.prepare(upstream_reply("www.example.", answers=["www.example. 60 IN A 192.0.2.1"]))
    reply = served(cache, stored, "WwW.ExAmple.", id=7, rd=False)
    assert reply.id == 7 and reply.question[0].name.to_text() == "WwW.ExAmple."  # 0x20 spelling kept
    assert reply.flags & dns.flags.RA and not reply.flags & (dns.flags.AA | dns.flags.RD | dns.flags.TC)
    assert reply.edns == -1  # the client sent no OPT: none back, whatever the upstream sent
    with_edns = served(cache, stored, edns=1232)
    assert with_edns.edns == 0 and with_edns.payload == 4096


@pytest.mark.parametrize("rcode,answers,minimum,soa_ttl,lifetime", [
    (dns.rcode.NXDOMAIN, [], 60, 900, 60),  # min(SOA TTL, MINIMUM)
    (dns.rcode.NXDOMAIN, [], 3600, 30, 30),
    (dns.rcode.NOERROR, [], 20, 900, 20),  # NODATA
    (dns.rcode.NXDOMAIN, [], 86400, 86400, 300),  # capped
    (dns.rcode.NXDOMAIN, ["alias.example. 10 IN CNAME gone.example."], 60, 900, 10),  # the CNAME's TTL is lower
])
def test_negative_caching(cache, clock, rcode, answers, minimum, soa_ttl, lifetime):
    stored = cache.prepare(upstream_reply(rcode=rcode, answers=answers,
                                          authority=[f"example. {soa_ttl} IN SOA {SOA.format(minimum=minimum)}"]))
    assert stored.lifetime == lifetime and cache.keep(key_for(), stored)
    clock.advance(5)
    reply = served(cache, cache.lookup(key_for()))
    assert reply.rcode() == rcode
    [soa] = reply.authority
    assert soa.ttl == lifetime - 5  # the SOA says how long the negative answer lives
    clock.advance(lifetime - 5)
    assert cache.lookup(key_for()) is None


@pytest.mark.parametrize("rcode,options", [
    (dns.rcode.SERVFAIL, {}),
    (dns.rcode.REFUSED, {}),
    (dns.rcode.NXDOMAIN, {}),  # negative without an SOA (RFC 2308 §5)
    (dns.rcode.NOERROR, {"answers": ["www.example. 0 IN A 192.0.2.1"]}),  # TTL 0
    (dns.rcode.NOERROR, {"answers": ["www.example. 30 IN A 192.0.2.1"], "tc": True}),  # truncated
], ids=["servfail", "refused", "nxdomain-without-soa", "ttl-0", "truncated"])
def test_not_cached(cache, rcode, options):
    stored = cache.prepare(upstream_reply(rcode=rcode, **options))
    assert stored.lifetime == 0 and not cache.keep(key_for(), stored) and len(cache) == 0
    assert served(cache, stored).rcode() == rcode  # still served, this once


def test_lru_bound(cache):
    names = [f"n{i}.example." for i in range(4)]
    for name in names[:3]:
        cache.keep(key_for(name), cache.prepare(upstream_reply(name, answers=[f"{name} 60 IN A 192.0.2.1"])))
    assert cache.lookup(key_for(names[0])) is not None  # n0 is now the most recent
    cache.keep(key_for(names[3]), cache.prepare(upstream_reply(names[3], answers=[f"{names[3]} 60 IN A 192.0.2.4"])))
    assert len(cache) == 3 and cache.evicted == 1
    assert [cache.lookup(key_for(name)) is not None for name in names] == [True, False, True, True]


def test_too_big_for_the_client_is_truncated_with_the_question(cache):
    lines = [f"big.example. 60 IN A 192.0.2.{i}" for i in range(1, 61)]  # ~1,000 bytes
    stored = cache.prepare(upstream_reply("big.example.", answers=lines))
    small = served(cache, stored, "big.example.")
    assert small.flags & dns.flags.TC and not small.answer and small.edns == -1
    with_edns = served(cache, stored, "big.example.", edns=600)
    assert with_edns.flags & dns.flags.TC and not with_edns.answer and with_edns.edns == 0
    whole = served(cache, stored, "big.example.", edns=4096)
    assert not whole.flags & dns.flags.TC and len(whole.answer[0]) == 60


def test_header_only_error_gets_the_question(cache):
    query = dns.message.make_query("www.example.", "A")
    wire = bytearray(query.to_wire()[:12])
    wire[2], wire[3] = 0x81, dns.rcode.REFUSED
    wire[4:6] = b"\x00\x00"
    stored = cache.prepare(bytes(wire))
    assert served(cache, stored).rcode() == dns.rcode.REFUSED


def test_disabled_cache_keeps_nothing(clock):
    cache = ReplyCache(capacity=0, clock=clock)
    stored = cache.prepare(upstream_reply(answers=["www.example. 30 IN A 192.0.2.1"]))
    assert not cache.keep(key_for(), stored) and cache.lookup(key_for()) is None
