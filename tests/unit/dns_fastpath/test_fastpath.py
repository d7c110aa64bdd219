"""FastPath on fixed cases: which queries it takes, the replies it gives (read with dnspython,
compared with the Answerer's), and that no change to the zones leaves a stale answer."""

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest
from dnslib import QTYPE

from appliers.dns import fastpath
from appliers.dns.acl import RecursionAcl
from appliers.dns.answer import Answerer
from appliers.dns.fastpath import FastPath, encode_record, parse_query
from appliers.dns.records import record
from appliers.dns.zone import ZoneSet
from tests.unit.dns_fastpath.messages import query, shape

WEB = [record("web.marathon.mesos.", "A", 5, "10.0.0.1"),
       record("web.marathon.mesos.", "A", 5, "10.0.0.2"),
       record("web.marathon.mesos.", "AAAA", 5, "fd01:b::2:8000:0:2")]
BIG = "big.marathon.mesos."  # 60 A records: 1,007 bytes, over 512
RECORDS = [
    *WEB,
    record("_web._tcp.marathon.mesos.", "SRV", 5, "0 1 31000 web.marathon.mesos."),
    record("alias.thisdcos.directory.", "CNAME", 5, "web.marathon.mesos."),
    record("away.thisdcos.directory.", "CNAME", 5, "www.example.com."),
    *(record(BIG, "A", 5, f"10.0.1.{i}") for i in range(1, 61)),
]


@pytest.fixture
def zones() -> ZoneSet:
    zones = ZoneSet()
    zones.replace(RECORDS)
    zones.ready = True
    return zones


@pytest.fixture
def paths(zones):
    answerer = Answerer(zones)
    return FastPath(answerer), answerer


def both(paths, wire):
    fast, answerer = paths
    return fast.reply(wire), answerer.answer(wire)


def addresses(wire) -> list[str]:
    return [rd.address for rrset in dns.message.from_wire(wire).answer for rd in rrset
            if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)]


@pytest.mark.parametrize("name,rdtype,edns", [
    ("Web.MARATHON.mesos.", "A", {}),
    ("web.marathon.mesos.", "AAAA", {"use_edns": 0, "payload": 1232}),
    ("web.marathon.mesos.", "A", {"use_edns": 0, "payload": 1232, "want_dnssec": True}),
    ("_web._tcp.marathon.mesos.", "SRV", {}),
    ("alias.thisdcos.directory.", "A", {}),  # CNAME chain, target's A records
    ("away.thisdcos.directory.", "A", {}),  # CNAME leaving our zones: the chain alone
    ("nope.marathon.mesos.", "A", {}),  # NXDOMAIN + SOA
    ("web.marathon.mesos.", "SRV", {}),  # NODATA + SOA
    ("marathon.mesos.", "A", {}),  # empty non-terminal: NODATA
    ("mesos.", "ANY", {}),
    ("mesos.", "SOA", {"use_edns": 0}),
    ("web.marathon.mesos.", "HTTPS", {}),  # a type we never hold
    ("ready.spartan.", "A", {}),
    (BIG, "A", {"use_edns": 0, "payload": 4096}),
])
def test_common_queries_are_answered_as_the_answerer_does(paths, name, rdtype, edns):
    for id in (0, 1, 2, 65535):
        fast, slow = both(paths, query(name, rdtype, id=id, **edns))
        assert fast is not None
        assert shape(fast) == shape(slow)


def test_plain_a_reply_is_byte_for_byte_the_answerers(paths):
    fast, slow = both(paths, query("Web.Marathon.Mesos.", id=0x1234))
    assert fast == slow
    assert fast[:4] == b"\x12\x34\x85\x00"  # id, QR|AA|RD, NOERROR
    assert fast[-32:] == (  # owner 0xC00C, A, IN, TTL 5, 4 bytes; id 0x1234 is even: no shift
        b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x05\x00\x04\x0a\x00\x00\x01"
        b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x05\x00\x04\x0a\x00\x00\x02")


def test_answers_rotate_by_message_id(paths):
    fast, _ = paths
    assert addresses(fast.reply(query("web.marathon.mesos.", id=0))) == ["10.0.0.1", "10.0.0.2"]
    assert addresses(fast.reply(query("web.marathon.mesos.", id=1))) == ["10.0.0.2", "10.0.0.1"]
    wide = [addresses(fast.reply(query(BIG, id=id, use_edns=0, payload=4096))) for id in (0, 1, 61)]
    assert wide[0] == [f"10.0.1.{i}" for i in range(1, 61)]
    assert wide[1] == wide[0][1:] + wide[0][:1] == wide[2]  # 61 mod 60


def test_rd_is_copied_and_the_rest_of_the_header_is_ours(paths):
    fast, _ = paths
    reply = dns.message.from_wire(fast.reply(query("web.marathon.mesos.", rd=False)))
    assert reply.flags == dns.flags.QR | dns.flags.AA
    reply = dns.message.from_wire(fast.reply(query("web.marathon.mesos.")))
    assert reply.flags == dns.flags.QR | dns.flags.AA | dns.flags.RD


def test_too_big_a_answers_are_truncated_here_with_question_and_opt(paths):
    for edns in ({}, {"use_edns": 0, "payload": 512, "want_dnssec": True}):
        fast, slow = both(paths, query(BIG, id=9, **edns))
        assert fast is not None and shape(fast) == shape(slow)
        reply = dns.message.from_wire(fast)
        assert reply.flags & dns.flags.TC and not reply.answer and reply.question


def test_too_big_with_compressible_names_is_left_to_the_answerer(zones):
    # Our CNAME target and SOA names are uncompressed; the Answerer's may fit where ours
    # does not, so the fast path must not guess.
    name = "many.marathon.mesos."
    zones.upsert(name, "SRV", [record(name, "SRV", 5, f"0 1 {port} web.marathon.mesos.")
                               for port in range(31000, 31020)])
    answerer = Answerer(zones)
    wire = query(name, "SRV")
    assert len(answerer.answer(wire)) <= 512 < len(b"".join(
        encode_record(r, name) for r in zones.lookup(name, "SRV").answers))
    assert FastPath(answerer).reply(wire) is None


@pytest.mark.parametrize("wire", [
    query("www.example.com."),  # not ours: forward or REFUSED
    query("mesos.", "AXFR"),
    query("version.bind.", "TXT", rdclass="CH"),
    query("web.marathon.mesos.", rdclass="ANY"),
    query("web.marathon.mesos.", use_edns=1),  # BADVERS
    query("bad\\.label.marathon.mesos."),  # a byte our zones cannot hold
    query("web.marathon.dclb.thisdcos.directory."),  # dcos-dns alias: renamed by the Answerer
    query("web.marathon.mesos.thisdcos.directory."),
    query("web.marathon.mesos.")[:-1],  # cut short
    query("web.marathon.mesos.") + b"\x00",  # trailing garbage
    query("web.marathon.mesos.")[:2] + b"\x80" + query("web.marathon.mesos.")[3:],  # a response
    query("web.marathon.mesos.")[:2] + b"\x28" + query("web.marathon.mesos.")[3:],  # UPDATE
])
def test_unusual_queries_go_to_the_answerer(paths, wire):
    fast, _ = paths
    assert fast.reply(wire) is None


def test_a_compressed_question_goes_to_the_answerer(paths):
    fast, _ = paths
    wire = bytearray(query("web.marathon.mesos."))
    pointer_question = bytes(wire[:12]) + b"\xc0\x0c" + bytes(wire[-4:])  # points at itself
    assert fast.reply(pointer_question) is None


def test_not_ready_goes_to_the_answerer_and_is_never_cached(zones, paths):
    fast, _ = paths
    zones.ready = False
    assert fast.reply(query("web.marathon.mesos.")) is None
    zones.ready = True
    assert addresses(fast.reply(query("web.marathon.mesos.", id=0))) == ["10.0.0.1", "10.0.0.2"]
    zones.ready = False
    assert fast.reply(query("web.marathon.mesos.")) is None


def test_every_change_is_seen_at_once(zones, paths):
    fast, answerer = paths
    wire = query("web.marathon.mesos.", id=0)
    assert addresses(fast.reply(wire)) == ["10.0.0.1", "10.0.0.2"]
    zones.upsert("web.marathon.mesos.", "A", [record("web.marathon.mesos.", "A", 5, "10.0.0.9")])
    assert addresses(fast.reply(wire)) == ["10.0.0.9"]
    zones.remove("web.marathon.mesos.", "A")
    nodata = fast.reply(wire)
    assert dns.message.from_wire(nodata).rcode() == dns.rcode.NOERROR and not addresses(nodata)
    assert shape(nodata) == shape(answerer.answer(wire))  # the SOA carries the new serial
    zones.replace([])
    gone = fast.reply(wire)
    assert dns.message.from_wire(gone).rcode() == dns.rcode.NXDOMAIN
    assert shape(gone) == shape(answerer.answer(wire))


def test_the_cache_is_bounded(zones):
    fast = FastPath(Answerer(zones), max_entries=2)
    for i in range(5):
        reply = fast.reply(query(f"n{i}.marathon.mesos."))
        assert dns.message.from_wire(reply).rcode() == dns.rcode.NXDOMAIN
    assert len(fast._entries) == 2


def test_parse_query_layouts():
    plain = query("web.marathon.mesos.")
    assert parse_query(plain) == (len(plain), None, False)
    opt = query("web.marathon.mesos.", use_edns=0, payload=1232, want_dnssec=True)
    assert parse_query(opt) == (len(opt) - 11, 1232, True)
    cookie = query("web.marathon.mesos.", use_edns=0, payload=1400,
                   options=[dns.edns.GenericOption(10, b"\x01" * 8)])
    assert parse_query(cookie) == (len(plain), 1400, False)
    broken = bytearray(cookie)
    broken[-9] = 0x20  # option length past the end
    assert parse_query(bytes(broken)) is None
    two = bytearray(opt)
    two[11] = 2
    assert parse_query(bytes(two)) is None


def test_lookup_type_names_are_dnslibs():
    # The Answerer looks up dnslib's mnemonic; ours must read the same to the zone.
    for code, name in fastpath._LOOKUP_NAMES.items():
        assert QTYPE[code] == name
    assert QTYPE[65000] == "TYPE65000"


def test_our_udp_cap_wins_over_a_huge_client_size(zones):
    name = "huge.marathon.mesos."
    zones.upsert(name, "A", [record(name, "A", 5, f"10.0.{i // 250}.{i % 250}")
                             for i in range(100)])
    answerer = Answerer(zones, max_udp_payload=1232)
    wire = query(name, use_edns=0, payload=65000)
    reply = FastPath(answerer).reply(wire)
    assert dns.message.from_wire(reply).flags & dns.flags.TC  # 1,628 bytes over our 1,232
    assert dns.message.from_wire(reply).payload == 1232
    assert shape(reply) == shape(answerer.answer(wire))


def test_a_change_keeps_other_names_positive_answers_cached(zones, paths):
    fast, answerer = paths
    web, big = query("web.marathon.mesos."), query(BIG)
    nope, alias = query("nope.marathon.mesos."), query("alias.thisdcos.directory.")
    for wire in (web, big, nope, alias):
        fast.reply(wire)
    assert len(fast._entries) == 4
    zones.upsert("db.marathon.mesos.", "A", [record("db.marathon.mesos.", "A", 5, "10.0.0.7")])
    # web and big keep theirs; the NXDOMAIN (its SOA serial moved) and the CNAME chain
    # (it reads another name) are rebuilt on their next query.
    assert sorted(fast._entries) == sorted(w[12:].lower() for w in (web, big))
    for wire in (web, big, nope, alias):
        assert shape(fast.reply(wire)) == shape(answerer.answer(wire))
    zones.upsert("web.marathon.mesos.", "A", [record("web.marathon.mesos.", "A", 5, "10.0.0.9")])
    assert web[12:].lower() not in fast._entries and big[12:].lower() in fast._entries
    zones.replace(RECORDS)
    assert not fast._entries


def test_ra_is_set_for_clients_that_may_recurse(zones):
    answerer = Answerer(zones, lambda forwarding: None, recursion_acl=RecursionAcl.for_node())
    fast = FastPath(answerer)
    wire = query("web.marathon.mesos.", use_edns=0)
    for client, ra in (("127.0.0.1", True), ("192.0.2.7", False), (None, False)):
        reply = fast.reply(wire, client)
        assert bool(dns.message.from_wire(reply).flags & dns.flags.RA) == ra
        assert shape(reply) == shape(answerer.answer(wire, client=client))
    assert not dns.message.from_wire(FastPath(Answerer(zones)).reply(wire, "127.0.0.1")).flags & dns.flags.RA
