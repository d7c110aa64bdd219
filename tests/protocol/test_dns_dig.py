"""dig (BIND 9's client) against the running DnsServer: what operators will type."""

import re

from .conftest import BIG, BIG_ADDRESSES, dig, serve


def status(out: str) -> str:
    return re.search(r"status: (\w+)", out).group(1)


def flags(out: str) -> set[str]:
    return set(re.search(r";; flags: ([a-z ]*);", out).group(1).split())


def section(out: str, name: str) -> list[list[str]]:
    """The records of one section, each split into fields."""
    match = re.search(rf";; {name} SECTION:\n(.*?)(?:\n\n|\Z)", out, re.S)
    return [line.split() for line in match.group(1).splitlines()] if match else []


async def test_answer_over_udp_and_tcp(dig_path, dns_server):
    for transport in ("+notcp", "+tcp"):
        out = await dig(dig_path, dns_server, transport, "WEB.marathon.mesos.", "A")
        assert status(out) == "NOERROR" and "aa" in flags(out) and "ra" not in flags(out)
        assert sorted(record[4] for record in section(out, "ANSWER")) == ["10.0.0.1", "10.0.0.2"]
        assert section(out, "ANSWER")[0][:4] == ["WEB.marathon.mesos.", "5", "IN", "A"]
        assert f"({'TCP' if transport == '+tcp' else 'UDP'})" in out


async def test_srv(dig_path, dns_server):
    out = await dig(dig_path, dns_server, "_web._tcp.marathon.mesos.", "SRV")
    assert section(out, "ANSWER") == [
        ["_web._tcp.marathon.mesos.", "5", "IN", "SRV", "0", "1", "31000", "web.marathon.mesos."]]


async def test_nxdomain_and_nodata_with_soa(dig_path, dns_server):
    # Mesos-DNS's SOA names and timers for the zone it served (MINIMUM stays 1: see appliers/dns/zone.py).
    soa = ["mesos.", "1", "IN", "SOA", "ns1.mesos.", "root.ns1.mesos.", "2", "60", "600", "86400", "1"]
    out = await dig(dig_path, dns_server, "nope.marathon.mesos.", "A")
    assert status(out) == "NXDOMAIN" and "aa" in flags(out)
    assert section(out, "AUTHORITY") == [soa]
    out = await dig(dig_path, dns_server, "web.marathon.mesos.", "AAAA")
    assert status(out) == "NOERROR" and not section(out, "ANSWER")
    assert section(out, "AUTHORITY") == [soa]


async def test_bufsize_4096_is_one_udp_reply(dig_path, dns_server):
    out = await dig(dig_path, dns_server, "+bufsize=4096", BIG, "A")
    assert "Truncated" not in out and "(UDP)" in out
    assert sorted(record[4] for record in section(out, "ANSWER")) == sorted(BIG_ADDRESSES)
    assert "udp: 4096" in out  # our OPT came back
    assert dns_server.server.counters.truncated == 0


async def test_512_truncates_and_dig_retries_over_tcp(dig_path, dns_server):
    for option in ("+noedns", "+bufsize=512"):
        out = await dig(dig_path, dns_server, option, BIG, "A")
        assert "Truncated, retrying in TCP mode" in out and "(TCP)" in out
        assert sorted(record[4] for record in section(out, "ANSWER")) == sorted(BIG_ADDRESSES)
    assert dns_server.server.counters.truncated == 2


async def test_ready_spartan_before_and_after_ready(dig_path):
    running = await serve(ready=False)
    try:
        out = await dig(dig_path, running, "ready.spartan.", "A")
        assert status(out) == "SERVFAIL" and not section(out, "ANSWER")
        running.zones.ready = True
        out = await dig(dig_path, running, "ready.spartan.", "A")
        assert status(out) == "NOERROR"
        assert section(out, "ANSWER") == [["ready.spartan.", "5", "IN", "A", "127.0.0.1"]]
    finally:
        await running.server.stop()


async def test_apex_soa_ns_and_refused_outside(dig_path, dns_server):
    out = await dig(dig_path, dns_server, "thisdcos.directory.", "NS")
    assert section(out, "ANSWER") == [["thisdcos.directory.", "3600", "IN", "NS", "ns.spartan."]]
    out = await dig(dig_path, dns_server, "mesos.", "NS")
    assert section(out, "ANSWER") == [["mesos.", "3600", "IN", "NS", "ns1.mesos."]]
    out = await dig(dig_path, dns_server, "mesos.thisdcos.directory.", "SOA")  # the copy is dcos-dns's zone
    assert [record[4:6] for record in section(out, "ANSWER")] == [["ns.spartan.", "support.mesosphere.com."]]
    out = await dig(dig_path, dns_server, "www.example.com.", "A")
    assert status(out) == "REFUSED"
