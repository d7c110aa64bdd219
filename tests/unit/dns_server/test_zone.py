"""ZoneSet.lookup as a table of (query -> rcode, answer lines, authority lines), and the store's
update rules. The fixture zone (conftest.ZONE) went in with one replace: serial 2."""

import pytest

from appliers.dns.records import record
from appliers.dns.zone import NOERROR, NXDOMAIN, SERVFAIL, ZoneSet

from .conftest import ZONE, from_zone, lines

# Each zone's SOA is that of the system it replaces: Mesos-DNS for mesos., dcos-dns elsewhere.
SOA = "ns.spartan. support.mesosphere.com. {serial} 60 180 86400 1"
MESOS_SOA = "ns1.mesos. root.ns1.mesos. {serial} 60 600 86400 1"


def soa(origin: str, ttl: int = 1, serial: int = 2) -> str:
    """The SOA line; TTL 1 in negative answers (min of TTL 5 and MINIMUM 1, RFC 2308)."""
    return f"{origin} {ttl} IN SOA {(MESOS_SOA if origin == 'mesos.' else SOA).format(serial=serial)}"


LOOKUPS = [
    # qname, qtype, rcode, answer lines, authority lines
    ("web.marathon.mesos.", "A", NOERROR, """
        web.marathon.mesos. 5 IN A 10.0.0.1
        web.marathon.mesos. 5 IN A 10.0.0.2""", ""),
    ("web.marathon.mesos.", "AAAA", NOERROR, "web.marathon.mesos. 5 IN AAAA fd01:b::2:8000:0:2", ""),
    ("_web._tcp.marathon.mesos.", "SRV", NOERROR,
     "_web._tcp.marathon.mesos. 5 IN SRV 0 1 31000 web.marathon.mesos.", ""),
    ("web.fw.autoip.dcos.thisdcos.directory.", "A", NOERROR,
     "web.fw.autoip.dcos.thisdcos.directory. 5 IN A 9.0.1.2", ""),
    # case and the final dot do not matter
    ("WEB.Marathon.MESOS", "a", NOERROR, """
        web.marathon.mesos. 5 IN A 10.0.0.1
        web.marathon.mesos. 5 IN A 10.0.0.2""", ""),
    # NXDOMAIN: no such name under any type; the SOA of the closest origin
    ("nope.marathon.mesos.", "A", NXDOMAIN, "", soa("mesos.")),
    ("nope.thisdcos.directory.", "AAAA", NXDOMAIN, "", soa("thisdcos.directory.")),
    # NODATA: the name exists under another type, or as an empty non-terminal
    ("_web._tcp.marathon.mesos.", "A", NOERROR, "", soa("mesos.")),
    ("web.fw.autoip.dcos.thisdcos.directory.", "AAAA", NOERROR, "", soa("thisdcos.directory.")),
    ("marathon.mesos.", "A", NOERROR, "", soa("mesos.")),
    ("_tcp.marathon.mesos.", "SRV", NOERROR, "", soa("mesos.")),
    ("dcos.thisdcos.directory.", "A", NOERROR, "", soa("thisdcos.directory.")),
    ("web.marathon.mesos.", "MX", NOERROR, "", soa("mesos.")),
    # ANY: every RRset at the name
    ("web.marathon.mesos.", "ANY", NOERROR, """
        web.marathon.mesos. 5 IN A 10.0.0.1
        web.marathon.mesos. 5 IN A 10.0.0.2
        web.marathon.mesos. 5 IN AAAA fd01:b::2:8000:0:2""", ""),
    ("marathon.mesos.", "ANY", NOERROR, "", soa("mesos.")),
    # the apex: SOA (TTL 5 when asked for) and NS
    ("mesos.", "SOA", NOERROR, soa("mesos.", ttl=5), ""),
    ("thisdcos.directory.", "NS", NOERROR, "thisdcos.directory. 3600 IN NS ns.spartan.", ""),
    ("zk.", "NS", NOERROR, "zk. 3600 IN NS ns.spartan.", ""),
    ("mesos.", "A", NOERROR, "", soa("mesos.")),
    ("web.marathon.mesos.", "SOA", NOERROR, "", soa("mesos.")),
    # CNAME: answered for other types too, with the target's records when they are ours
    ("alias.thisdcos.directory.", "A", NOERROR, """
        alias.thisdcos.directory. 5 IN CNAME web.marathon.mesos.
        web.marathon.mesos. 5 IN A 10.0.0.1
        web.marathon.mesos. 5 IN A 10.0.0.2""", ""),
    ("alias.thisdcos.directory.", "SRV", NOERROR,
     "alias.thisdcos.directory. 5 IN CNAME web.marathon.mesos.", soa("mesos.")),
    ("alias.thisdcos.directory.", "CNAME", NOERROR,
     "alias.thisdcos.directory. 5 IN CNAME web.marathon.mesos.", ""),
    ("alias.thisdcos.directory.", "ANY", NOERROR,
     "alias.thisdcos.directory. 5 IN CNAME web.marathon.mesos.", ""),
    ("away.thisdcos.directory.", "A", NOERROR, "away.thisdcos.directory. 5 IN CNAME www.example.com.", ""),
    ("dangling.thisdcos.directory.", "A", NXDOMAIN,
     "dangling.thisdcos.directory. 5 IN CNAME gone.marathon.mesos.", soa("mesos.")),
    # the fixed dcos-dns names
    ("ready.spartan.", "A", NOERROR, "ready.spartan. 5 IN A 127.0.0.1", ""),
    ("ns.spartan.", "A", NOERROR, "ns.spartan. 5 IN A 198.51.100.1", ""),
    ("localhost.", "A", NOERROR, "localhost. 5 IN A 127.0.0.1", ""),
]


@pytest.mark.parametrize("qname,qtype,rcode,answer,authority", LOOKUPS,
                         ids=[f"{q[0]}{q[1]}" for q in LOOKUPS])
def test_lookup(zones, qname, qtype, rcode, answer, authority):
    result = zones.lookup(qname, qtype)
    assert (result.rcode, lines(result.answers), lines(result.authority), result.aa) == (
        rcode, lines(from_zone(answer)), lines(from_zone(authority)), True)


def test_names_outside_our_origins_are_not_ours(zones):
    for qname in ("www.example.com.", "com.", ".", "mesos.com.", "directory."):
        assert zones.lookup(qname, "A") is None


def test_not_ready_is_servfail_never_nxdomain(zones):
    zones.ready = False
    for qname in ("ready.spartan.", "web.marathon.mesos.", "nope.marathon.mesos.", "mesos."):
        result = zones.lookup(qname, "A")
        assert (result.rcode, result.answers, result.authority, result.aa) == (SERVFAIL, (), (), False)
    assert zones.lookup("www.example.com.", "A") is None  # not ours: still for the forwarder
    zones.ready = True
    assert lines(zones.lookup("ready.spartan.", "A").answers) == ["ready.spartan. 5 IN A 127.0.0.1"]


def test_replace_swaps_the_whole_copy_and_bumps_the_serial(zones):
    assert zones.replace(from_zone(ZONE)) is False  # the same copy: nothing changed
    assert zones.serial == 2
    assert zones.replace(from_zone("db.marathon.mesos. 5 IN A 10.0.0.9")) is True
    assert zones.serial == 3
    assert zones.lookup("web.marathon.mesos.", "A").rcode == NXDOMAIN
    assert zones.lookup("marathon.mesos.", "A").rcode == NOERROR  # still an empty non-terminal
    assert lines(zones.lookup("mesos.", "SOA").answers) == [soa("mesos.", ttl=5, serial=3)]
    assert lines(zones.records()) == ["db.marathon.mesos. 5 IN A 10.0.0.9"]


@pytest.mark.parametrize("bad", [
    "ns.spartan. 5 IN A 10.0.0.1",  # a fixed name
    "mesos. 5 IN NS ns1.example.com.",  # apex data belongs to the zone
    "www.example.com. 5 IN A 10.0.0.1",  # not ours
    "web.marathon.mesos. 5 IN CNAME other.mesos.",  # CNAME beside the fixture's A/AAAA
])
def test_a_bad_copy_keeps_the_last_good_one(zones, bad):
    before = zones.records()
    with pytest.raises(ValueError):
        zones.replace(from_zone(ZONE + bad))
    assert zones.records() == before and zones.serial == 2


def test_upsert_and_remove_keep_empty_non_terminals_right(zones):
    name = "db.prod.marathon.mesos."
    rrset = from_zone(f"{name} 5 IN A 10.0.0.7\n{name} 5 IN A 10.0.0.8\n{name} 5 IN A 10.0.0.7")
    assert zones.upsert(name, "A", rrset) is True
    assert zones.upsert(name, "A", rrset) is False  # a repeat is no change
    assert lines(zones.lookup(name, "A").answers) == [f"{name} 5 IN A 10.0.0.7", f"{name} 5 IN A 10.0.0.8"]
    assert zones.lookup("prod.marathon.mesos.", "A").rcode == NOERROR  # exists: NODATA
    assert zones.serial == 3
    assert zones.remove(name, "A") is True
    assert zones.remove(name, "A") is False
    assert zones.lookup(name, "A").rcode == NXDOMAIN
    assert zones.lookup("prod.marathon.mesos.", "A").rcode == NXDOMAIN  # nothing below any more
    assert zones.lookup("marathon.mesos.", "A").rcode == NOERROR  # web.marathon.mesos. still is
    assert zones.serial == 4
    assert zones.upsert("web.marathon.mesos.", "AAAA", []) is True  # empty = remove
    assert lines(zones.lookup("web.marathon.mesos.", "ANY").answers) == [
        "web.marathon.mesos. 5 IN A 10.0.0.1", "web.marathon.mesos. 5 IN A 10.0.0.2"]


def test_upsert_refuses_what_is_not_its_rrset(zones):
    with pytest.raises(ValueError):
        zones.upsert("a.mesos.", "A", from_zone("b.mesos. 5 IN A 10.0.0.1"))
    with pytest.raises(ValueError):  # a CNAME is alone at its name
        zones.upsert("web.marathon.mesos.", "CNAME", from_zone("web.marathon.mesos. 5 IN CNAME x.mesos."))
    with pytest.raises(ValueError):
        zones.remove("ready.spartan.", "A")
    with pytest.raises(ValueError):  # hand-made, not canonical: would never match a lookup
        zones.upsert("A.mesos.", "A", [("A.mesos.", "A", 5, "10.0.0.1")])
    assert zones.serial == 2


def test_cname_loops_and_long_chains_end(zones):
    zones.replace(from_zone("""
        a.mesos. 5 IN CNAME b.mesos.
        b.mesos. 5 IN CNAME a.mesos.
    """ + "".join(f"c{i}.mesos. 5 IN CNAME c{i + 1}.mesos.\n" for i in range(20))))
    assert lines(zones.lookup("a.mesos.", "A").answers) == [
        "a.mesos. 5 IN CNAME b.mesos.", "b.mesos. 5 IN CNAME a.mesos."]
    assert len(zones.lookup("c0.mesos.", "A").answers) == 9  # MAX_CNAME_CHAIN + 1


@pytest.mark.parametrize("args", [
    ("a.mesos.", "A", 5, "10.0.0.256"), ("a.mesos.", "A", 5, "010.0.0.1"),
    ("a.mesos.", "AAAA", 5, "10.0.0.1"), ("a.mesos.", "SRV", 5, "0 1 80"),
    ("a.mesos.", "SRV", 5, "0 1 65536 t.mesos."), ("a.mesos.", "TXT", 5, "hi"),
    ("a..mesos.", "A", 5, "10.0.0.1"), ("a b.mesos.", "A", 5, "10.0.0.1"),
    ("a.mesos.", "A", -1, "10.0.0.1"), ("x" * 64 + ".mesos.", "A", 5, "10.0.0.1"),
])
def test_record_rejects(args):
    with pytest.raises(ValueError):
        record(*args)


def test_record_canonicalises():
    assert record("Web.Mesos", "srv", 5, "0 01 80 T.Mesos") == (
        "web.mesos.", "SRV", 5, "0 1 80 t.mesos.")
    assert record("a.mesos.", "AAAA", 5, "FD01:B:0::2").rdata == "fd01:b::2"


def test_origins_are_configurable():
    zones = ZoneSet(["cluster.local"], ready=True)
    assert zones.lookup("ready.spartan.", "A") is None  # fixed names only within our origins
    assert lines(zones.lookup("cluster.local.", "NS").answers) == ["cluster.local. 3600 IN NS ns.spartan."]
