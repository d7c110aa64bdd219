"""Each zone answers with the SOA of the system it replaces, and the mesos zone's names are
configurable as Mesos-DNS's SOAMname/SOARname are."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from appliers.dns.role import mesos_soa, zones_for
from appliers.options import NodeOptions
from cli.main import main
from schemas.catalog import Catalog


def options(**changed) -> NodeOptions:
    return NodeOptions("unused:9092", Catalog(), "test", "10.0.0.9", roles=("dns",), **changed)


def soa_of(zones, origin: str) -> str:
    zones.ready = True
    (record,) = zones.lookup(origin, "SOA").answers
    return record.rdata


def test_mesos_answers_mesos_dns_soa_and_the_dcos_zones_dcos_dns_soa():
    zones = zones_for(options())
    assert soa_of(zones, "mesos.") == "ns1.mesos. root.ns1.mesos. 1 60 600 86400 1"
    assert [r.rdata for r in zones.lookup("mesos.", "NS").answers] == ["ns1.mesos."]
    assert [r.rdata for r in zones.lookup("thisdcos.directory.", "NS").answers] == ["ns.spartan."]
    for origin in ("thisdcos.directory.", "zk.", "spartan."):
        assert soa_of(zones, origin) == "ns.spartan. support.mesosphere.com. 1 60 180 86400 1"


def test_the_mesos_soa_names_are_configurable_and_checked():
    zones = zones_for(options(dns_soa_mname="dns1.example", dns_soa_rname="hostmaster@example.com"))
    assert soa_of(zones, "mesos.") == "dns1.example. hostmaster.example.com. 1 60 600 86400 1"
    with pytest.raises(ValueError, match="--dns-soa-mname 'bad name..' is not a DNS name"):
        mesos_soa(options(dns_soa_mname="bad name.."))
    result = CliRunner().invoke(main, ["node", "--bootstrap", "127.0.0.1:1", "--node-id", "n", "--agent-ip", "10.0.0.9", "--roles", "dns",
                                       "--dns-soa-rname", "a..b"])
    assert result.exit_code == 2 and "--dns-soa-rname 'a..b' is not a DNS name" in result.output


def test_a_forwarded_mesos_zone_still_builds():
    zones = zones_for(options(mesos_dns=("10.0.0.1",)))
    assert "mesos." not in zones.origins
    assert soa_of(zones, "zk.") == "ns.spartan. support.mesosphere.com. 1 60 180 86400 1"
