"""The Answerer's share of forwarding: the dcos-dns aliases answered from our own zones with
every name renamed back, and who may recurse (REFUSED and RA=0 for everyone else)."""

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from appliers.dns.acl import RecursionAcl
from appliers.dns.answer import Answerer, Forwarding
from appliers.dns.records import record
from appliers.dns.zone import ZoneSet

RECORDS = [
    record("web.fw.l4lb.thisdcos.directory.", "A", 5, "11.0.0.7"),
    record("alias.thisdcos.directory.", "CNAME", 5, "web.fw.l4lb.thisdcos.directory."),
    record("_web._tcp.fw.l4lb.thisdcos.directory.", "SRV", 5, "0 1 80 web.fw.l4lb.thisdcos.directory."),
    record("web.marathon.mesos.", "A", 5, "10.0.0.1"),
    record("web-abcde-s1.marathon.mesos.", "A", 60, "10.0.0.1"),
    record("_web._tcp.marathon.mesos.", "SRV", 60, "0 1 31000 web-abcde-s1.marathon.mesos."),
]


async def nowhere(forwarding):  # never awaited here: the answerer only hands Forwardings back
    raise AssertionError


@pytest.fixture
def zones() -> ZoneSet:
    zones = ZoneSet()
    zones.replace(RECORDS)
    zones.ready = True
    return zones


def ask(answerer, name, rdtype="A", client="127.0.0.1"):
    query = dns.message.make_query(name, rdtype)
    result = answerer.answer(query.to_wire(), client=client)
    if isinstance(result, Forwarding):
        return result
    reply = dns.message.from_wire(result)
    assert reply.question == query.question
    return reply


def lines(reply, section="answer"):
    return [f"{rrset.name} {rrset.ttl} {dns.rdatatype.to_text(rrset.rdtype)} {rd}"
            for rrset in getattr(reply, section) for rd in rrset]


@pytest.mark.parametrize("name,rdtype,expected", [
    ("Web.FW.dclb.thisdcos.directory.", "A", ["Web.FW.dclb.thisdcos.directory. 5 A 11.0.0.7"]),
    ("web.fw.dclb.thisdcos.global.", "A", ["web.fw.dclb.thisdcos.global. 5 A 11.0.0.7"]),
    ("web.fw.l4lb.thisdcos.global.", "A", ["web.fw.l4lb.thisdcos.global. 5 A 11.0.0.7"]),
    ("alias.thisdcos.global.", "A", [
        "alias.thisdcos.global. 5 CNAME web.fw.l4lb.thisdcos.global.",
        "web.fw.l4lb.thisdcos.global. 5 A 11.0.0.7"]),
    ("_web._tcp.fw.dclb.thisdcos.global.", "SRV", [
        "_web._tcp.fw.dclb.thisdcos.global. 5 SRV 0 1 80 web.fw.dclb.thisdcos.global."]),
    # dcos-dns' copy of the Mesos-DNS zone: TTL 5, SRV priority and weight 1 1, targets renamed.
    ("web-abcde-s1.marathon.mesos.thisdcos.directory.", "A", [
        "web-abcde-s1.marathon.mesos.thisdcos.directory. 5 A 10.0.0.1"]),
    ("_web._tcp.marathon.mesos.thisdcos.directory.", "SRV", [
        "_web._tcp.marathon.mesos.thisdcos.directory. 5 SRV 1 1 31000 web-abcde-s1.marathon.mesos.thisdcos.directory."]),
    ("_web._tcp.marathon.mesos.thisdcos.global.", "SRV", [
        "_web._tcp.marathon.mesos.thisdcos.global. 5 SRV 1 1 31000 web-abcde-s1.marathon.mesos.thisdcos.global."]),
])
def test_aliases_are_answered_under_the_name_asked(zones, name, rdtype, expected):
    reply = ask(Answerer(zones), name, rdtype)
    assert reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.AA
    assert lines(reply) == expected


def test_negative_alias_answers_carry_the_renamed_soa(zones):
    reply = ask(Answerer(zones), "nope.thisdcos.global.")
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert lines(reply, "authority") == [
        "thisdcos.global. 1 SOA ns.spartan. support.mesosphere.com. 2 60 180 86400 1"]
    copy = ask(Answerer(zones), "nope.marathon.mesos.thisdcos.directory.")
    assert copy.rcode() == dns.rcode.NXDOMAIN
    assert lines(copy, "authority") == [
        "mesos.thisdcos.directory. 1 SOA ns.spartan. support.mesosphere.com. 2 60 180 86400 1"]
    nodata = ask(Answerer(zones), "web.fw.dclb.thisdcos.directory.", "AAAA")
    assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer
    assert [rrset.name.to_text() for rrset in nodata.authority] == ["thisdcos.directory."]


def test_ra_and_forwarding_follow_the_acl(zones):
    answerer = Answerer(zones, nowhere, recursion_acl=RecursionAcl(["10.0.0.0/8"]))
    inside = ask(answerer, "www.example.com.", client="10.1.2.3")
    assert isinstance(inside, Forwarding)
    outside = ask(answerer, "www.example.com.", client="127.0.0.1")
    assert outside.rcode() == dns.rcode.REFUSED and not outside.flags & dns.flags.RA
    for client, ra in (("10.1.2.3", True), ("127.0.0.1", False), (None, False)):
        cluster = ask(answerer, "web.marathon.mesos.", client=client)  # ours: answered to all
        assert cluster.rcode() == dns.rcode.NOERROR and bool(cluster.flags & dns.flags.RA) is ra


def test_without_an_acl_everyone_recurses_and_without_a_forwarder_nobody(zones):
    assert isinstance(ask(Answerer(zones, nowhere), "www.example.com.", client=None), Forwarding)
    assert ask(Answerer(zones, nowhere), "web.marathon.mesos.").flags & dns.flags.RA
    alone = ask(Answerer(zones, recursion_acl=RecursionAcl.for_node()), "www.example.com.")
    assert alone.rcode() == dns.rcode.REFUSED and not alone.flags & dns.flags.RA
