"""Conventions for the DNS server tests (CoreDNS habit: data and expectations as zone lines).

- Cluster names live under `mesos.` and `thisdcos.directory.` with TTL 5, as the processors
  will write them; addresses from 10.0.0.0/24, 9.0.0.0/8 (overlay) and fd01:b::/64.
- `from_zone(text)` turns zone-file lines into our canonical Records (dnslib parses the text,
  `records.record` canonicalises), so expected answers are compared as zone lines.
"""

import pytest
from dnslib import QTYPE, RR

from appliers.dns.records import Record, record
from appliers.dns.zone import ZoneSet

ZONE = """
web.marathon.mesos.                          5 IN A     10.0.0.1
web.marathon.mesos.                          5 IN A     10.0.0.2
web.marathon.mesos.                          5 IN AAAA  fd01:b::2:8000:0:2
_web._tcp.marathon.mesos.                    5 IN SRV   0 1 31000 web.marathon.mesos.
web.fw.autoip.dcos.thisdcos.directory.       5 IN A     9.0.1.2
alias.thisdcos.directory.                    5 IN CNAME web.marathon.mesos.
away.thisdcos.directory.                     5 IN CNAME www.example.com.
dangling.thisdcos.directory.                 5 IN CNAME gone.marathon.mesos.
"""


def from_zone(text: str) -> list[Record]:
    # Lines are stripped first: in zone files a leading blank means "the previous owner",
    # and the tests indent their lines.
    text = "\n".join(line.strip() for line in text.splitlines())
    return [record(str(rr.rname), QTYPE[rr.rtype], rr.ttl, rr.rdata.toZone())
            for rr in RR.fromZone(text)]


def lines(records) -> list[str]:
    return [r.zone_line() for r in records]


@pytest.fixture
def zones() -> ZoneSet:
    zones = ZoneSet()
    zones.replace(from_zone(ZONE))
    zones.ready = True
    return zones
