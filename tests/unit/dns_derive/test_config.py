"""DnsConfig: the DC/OS defaults and clear refusals of bad values."""

import pytest

from processors.dns.config import DnsConfig


def test_defaults_are_dcos():
    config = DnsConfig()
    assert (config.domain, config.ttl, config.srv_weight, config.enforce_rfc952) == ("mesos", 60, 1, False)
    assert (config.ip_sources, config.ip_merge, config.legacy_discovery_names, config.dcos_ttl) == (
        ("host", "netinfo"), "dcos", True, 5)


def test_domain_is_canonicalised_and_sources_become_a_tuple():
    config = DnsConfig(domain="Cluster.Example.", ip_sources=["netinfo", "mesos", "host"], ip_merge="first")
    assert config.domain == "cluster.example"
    assert config.ip_sources == ("netinfo", "mesos", "host")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("domain", "", "not a host name"),
        ("domain", "bad domain", "not a valid domain name"),
        ("domain", "_srv.mesos", "not a host name"),
        ("domain", "thisdcos.directory", "overlaps the dcos-dns zone"),
        ("domain", "directory", "overlaps the dcos-dns zone"),
        ("domain", "mesos.zk", "overlaps the dcos-dns zone"),
        ("ttl", -1, "ttl must be an integer from 0 to 2147483647"),
        ("ttl", True, "ttl must be an integer"),
        ("dcos_ttl", 2**31, "dcos_ttl must be an integer"),
        ("srv_weight", 65536, "srv_weight must be an integer from 0 to 65535"),
        ("enforce_rfc952", "yes", "enforce_rfc952 must be true or false"),
        ("legacy_discovery_names", 1, "legacy_discovery_names must be true or false"),
        ("ip_sources", (), "must name at least one of host, netinfo, mesos, docker"),
        ("ip_sources", ("host", "dns"), "must name at least one of"),
        ("ip_sources", "host", "must be a list of sources"),
        ("ip_sources", ("host", "host"), "lists a source twice"),
        ("ip_merge", "all", "ip_merge must be one of dcos, first"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(field, value, message):
    with pytest.raises(ValueError, match=message) as error:
        DnsConfig(**{field: value})
    assert field in str(error.value)
