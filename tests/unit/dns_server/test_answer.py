"""Answerer: query bytes to reply bytes. Queries are made and replies read with dnspython, so
the wire format is checked by a codec other than the one that wrote it."""

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import pytest

from appliers.dns.answer import Answerer, Forwarding
from appliers.dns.records import record

BIG = "big.marathon.mesos."  # 60 A records: about 1,000 bytes, over 512, under 1232


@pytest.fixture
def answerer(zones) -> Answerer:
    zones.upsert(BIG, "A", [record(BIG, "A", 5, f"10.0.1.{i}") for i in range(1, 61)])
    return Answerer(zones)


def ask(answerer, name, rdtype="A", *, id=1, tcp=False, **make) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, **make)
    query.id = id
    wire = answerer.answer(query.to_wire(), tcp=tcp)
    reply = dns.message.from_wire(wire)
    assert reply.id == id and reply.question == query.question  # as the client spelled it
    return reply


def addresses(reply) -> list[str]:
    return [rd.address for rrset in reply.answer for rd in rrset
            if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)]


def test_header_bits_and_answer(answerer):
    reply = ask(answerer, "Web.Marathon.Mesos.")
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.QR and reply.flags & dns.flags.AA and reply.flags & dns.flags.RD
    assert not reply.flags & (dns.flags.RA | dns.flags.TC)
    assert sorted(addresses(reply)) == ["10.0.0.1", "10.0.0.2"]
    assert reply.answer[0].ttl == 5
    query = dns.message.make_query("web.marathon.mesos.", "A")
    query.flags &= ~dns.flags.RD
    assert not dns.message.from_wire(answerer.answer(query.to_wire())).flags & dns.flags.RD


def test_nxdomain_and_nodata_carry_the_soa(answerer):
    for name, rdtype, rcode in (("nope.marathon.mesos.", "A", dns.rcode.NXDOMAIN),
                                ("web.marathon.mesos.", "SRV", dns.rcode.NOERROR)):
        reply = ask(answerer, name, rdtype)
        assert reply.rcode() == rcode and not reply.answer
        [soa] = reply.authority
        assert (soa.name.to_text(), soa.rdtype, soa.ttl) == ("mesos.", dns.rdatatype.SOA, 1)
        assert soa[0].to_text() == "ns1.mesos. root.ns1.mesos. 3 60 600 86400 1"  # Mesos-DNS's SOA for its zone


def test_edns_size_is_honoured(answerer):
    fits = ask(answerer, BIG, use_edns=0, payload=4096)
    assert not fits.flags & dns.flags.TC and len(addresses(fits)) == 60
    assert fits.edns == 0 and fits.payload == 4096  # OPT echoed, with our own size
    assert len(fits.to_wire()) > 512
    assert len(addresses(ask(answerer, BIG, use_edns=0, payload=1232))) == 60
    for make in ({}, {"use_edns": 0, "payload": 512}, {"use_edns": 0, "payload": 100}):
        cut = ask(answerer, BIG, **make)  # no EDNS, 512, and below 512 (means 512)
        assert cut.flags & dns.flags.TC and not cut.answer
    assert ask(answerer, BIG).edns == -1  # no OPT in, no OPT out


def test_truncation_keeps_question_and_opt_and_tcp_gets_everything(answerer):
    cut = ask(answerer, BIG, use_edns=0, payload=512, want_dnssec=True)
    assert cut.flags & dns.flags.TC and cut.flags & dns.flags.AA
    assert not cut.answer and not cut.authority
    assert cut.edns == 0 and cut.ednsflags & dns.flags.DO  # DO copied (RFC 3225)
    full = ask(answerer, BIG, tcp=True)
    assert not full.flags & dns.flags.TC and len(addresses(full)) == 60


def test_our_udp_cap_wins_over_a_huge_client_size(zones):
    name = "huge.marathon.mesos."
    zones.upsert(name, "A", [record(name, "A", 5, f"10.0.{i // 250}.{i % 250}") for i in range(300)])
    answerer = Answerer(zones, max_udp_payload=1232)
    assert ask(answerer, name, use_edns=0, payload=65000).flags & dns.flags.TC
    assert len(addresses(ask(answerer, name, tcp=True))) == 300


def test_answers_rotate_by_message_id(answerer):
    orders = [addresses(ask(answerer, BIG, id=i, tcp=True)) for i in (0, 1, 61)]
    assert orders[0] == [f"10.0.1.{i}" for i in range(1, 61)]
    assert orders[1] == orders[0][1:] + orders[0][:1]
    assert orders[2] == orders[1]  # 61 mod 60


def test_rotation_keeps_the_cname_first(zones):
    answerer = Answerer(zones)
    for id in (0, 1):
        reply = ask(answerer, "alias.thisdcos.directory.", id=id)
        assert [rrset.rdtype for rrset in reply.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]
    first = [addresses(ask(answerer, "alias.thisdcos.directory.", id=id))[0] for id in (0, 1)]
    assert first == ["10.0.0.1", "10.0.0.2"]


def test_not_ready_is_servfail(zones):
    zones.ready = False
    reply = ask(Answerer(zones), "ready.spartan.")
    assert reply.rcode() == dns.rcode.SERVFAIL and not reply.flags & dns.flags.AA and not reply.answer


def test_garbage_gets_formerr_or_nothing(answerer):
    query = dns.message.make_query("web.marathon.mesos.", "A").to_wire()
    formerr = answerer.answer(query[:12] + b"\x07garbage")  # header fine, question cut short
    assert formerr[:2] == query[:2] and formerr[3] & 0x0F == dns.rcode.FORMERR
    assert formerr[2] & 0x80 and formerr[4:] == bytes(8)
    assert answerer.answer(query[:11]) is None  # not even a header
    response = bytearray(query)
    response[2] |= 0x80
    assert answerer.answer(bytes(response)) is None  # a response: never answered


@pytest.mark.parametrize("count", [0, 2])
def test_qdcount_other_than_one_is_formerr(answerer, count):
    query = dns.message.make_query("web.marathon.mesos.", "A")
    query.question = query.question * count
    reply = dns.message.from_wire(answerer.answer(query.to_wire()))
    assert reply.rcode() == dns.rcode.FORMERR and reply.id == query.id


def test_other_opcodes_are_notimp(answerer):
    query = dns.message.make_query("web.marathon.mesos.", "SOA")
    query.set_opcode(dns.opcode.NOTIFY)
    reply = dns.message.from_wire(answerer.answer(query.to_wire()))
    assert (reply.rcode(), reply.opcode()) == (dns.rcode.NOTIMP, dns.opcode.NOTIFY)


def test_edns_version_1_is_badvers(answerer):
    reply = ask(answerer, "web.marathon.mesos.", use_edns=1)
    assert reply.rcode() == dns.rcode.BADVERS and reply.edns == 0


@pytest.mark.parametrize("name,rdtype,rdclass", [
    ("www.example.com.", "A", "IN"),  # not ours, no forwarder yet
    ("mesos.", "AXFR", "IN"),  # no zone transfers
    ("version.bind.", "TXT", "CH"),
])
def test_refused(answerer, name, rdtype, rdclass):
    query = dns.message.make_query(name, rdtype, rdclass)
    reply = dns.message.from_wire(answerer.answer(query.to_wire()))
    assert reply.rcode() == dns.rcode.REFUSED and reply.question == query.question


def test_the_forward_hook_gets_what_is_not_ours(zones):
    answerer = Answerer(zones, forward=lambda forwarding: None)
    query = dns.message.make_query("www.example.com.", "A", use_edns=0, payload=1232).to_wire()
    forwarding = answerer.answer(query)
    assert isinstance(forwarding, Forwarding)
    assert (forwarding.query, forwarding.limit, forwarding.tcp) == (query, 1232, False)
    assert answerer.answer(query, tcp=True).limit == 65535
    assert not isinstance(answerer.answer(
        dns.message.make_query("web.marathon.mesos.", "A").to_wire()), Forwarding)


def test_srv_and_aaaa_round_trip(answerer):
    [srv] = ask(answerer, "_web._tcp.marathon.mesos.", "SRV").answer
    assert srv[0].to_text() == "0 1 31000 web.marathon.mesos."
    [aaaa] = ask(answerer, "web.marathon.mesos.", "AAAA").answer
    assert aaaa[0].address == "fd01:b::2:8000:0:2"
    any_reply = ask(answerer, "mesos.", "ANY")
    assert sorted(dns.rdatatype.to_text(r.rdtype) for r in any_reply.answer) == ["NS", "SOA"]

