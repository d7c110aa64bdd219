"""Every shared Mesos fixture through the DNS derivation: golden zones, hand-written zones,
the incremental table against the whole derivation, and the facts of reference §1.5/§2.3.
"""

import pytest

from appliers.dns.records import record
from processors.dns.table import DnsTable
from schemas.dns import record_set_key
from tests.scenarios.mesos_fixtures import FIXTURES
from tests.unit.dns_derive.scenarios import (
    HAND,
    MESOS_FIXTURES,
    derived_of,
    expected_zone,
    records_of_zone,
    scenario_name,
    tables_of,
    zone_lines,
    zone_text,
)

OPERATOR_API = FIXTURES / "mesos-operator-api" / "operator-api.json"


@pytest.mark.parametrize("fixture", MESOS_FIXTURES, ids=scenario_name)
def test_fixture_matches_golden_zone(fixture):
    actual = zone_text(derived_of(fixture))
    assert actual == expected_zone(fixture, actual)
    assert zone_text(derived_of(fixture)) == actual  # replay from scratch: byte-identical


@pytest.mark.parametrize("fixture", MESOS_FIXTURES, ids=scenario_name)
def test_every_record_is_canonical_dns(fixture):
    """What the zone's own validator accepts, unchanged: the node can serve it as published."""
    for key, value in derived_of(fixture).records.items():
        assert key == record_set_key(value.name, value.type)
        assert value.rdata == sorted(set(value.rdata)) and value.tasks == sorted(set(value.tasks))
        for rdata in value.rdata:
            assert tuple(record(value.name, value.type, value.ttl, rdata)) == (value.name, value.type, value.ttl, rdata)


@pytest.mark.parametrize("fixture", MESOS_FIXTURES, ids=scenario_name)
def test_incremental_table_matches_whole_derivation(fixture):
    tasks, agents, frameworks, clusters = tables_of(fixture)
    table = DnsTable()
    # Tasks first: they wait for their agent and framework, then appear when those arrive.
    for key, task in tasks.items():
        table.put_task(key, task)
    for key, cluster in clusters.items():
        table.put_cluster(key, cluster)
    for key, framework in frameworks.items():
        table.put_framework(key, framework)
    for key, agent in agents.items():
        table.put_agent(key, agent)
    whole = derived_of(fixture)
    assert table.records == whole.records
    assert sorted(r for found in table.rejections.values() for r in found) == whole.rejections


@pytest.mark.parametrize(
    "name", ["mesos-operator-api--hello-world", "mesos-state--state_di"]
)
def test_hand_written_zone(name):
    """Zones written by hand from the rules before the code ran on these fixtures."""
    folder, stem = name.split("--")
    derived = derived_of(FIXTURES / folder / f"{stem}.json")
    assert zone_lines(derived) == records_of_zone((HAND / f"{name}.zone").read_text())
    assert derived.rejections == []


def test_operator_api_reproduces_the_axfr_shapes():
    """§1.5 quotes a DC/OS AXFR: ``_http._ucr-on-host._tcp.marathon.mesos.`` ->
    ``ucr-on-host-is6by-s0.marathon.mesos.:5463`` and ``_framework._tcp.marathon.mesos.`` ->
    ``marathon.mesos.:15101``. That AXFR came from another run of the same apps: in this
    fixture ucr-on-host has another task id (hash ``dndmp``), runs on agent S1 and listens
    on 10323, and a v1 operator-API framework has no PID, so no scheduler port and no
    ``_framework._tcp`` record. The shapes are the same, with this run's values.
    """
    records = derived_of(OPERATOR_API).records
    assert records["_http._ucr-on-host._tcp.marathon.mesos./SRV"].rdata == ["0 1 10323 ucr-on-host-dndmp-s1.marathon.mesos."]
    assert records["_ucr-on-host._tcp.marathon.mesos./SRV"].rdata == ["0 1 10323 ucr-on-host-dndmp-s1.marathon.mesos."]
    assert records["marathon.mesos./A"].rdata == ["172.17.0.2"]
    assert "_framework._tcp.marathon.mesos./SRV" not in records


def test_operator_api_dcos_zone_matrix():
    """The worked matrix of §2.3 for operator-api.json."""
    records = derived_of(OPERATOR_API).records

    def ips(task, kind, rtype="A"):
        found = records.get(f"{task}.marathon.{kind}.dcos.thisdcos.directory./{rtype}")
        return found.rdata if found else []

    # host networking: all three are the agent
    for task, agent in (("docker-on-host", "172.17.0.4"), ("none-on-host", "172.17.0.4"), ("ucr-on-host", "172.17.0.3")):
        assert (ips(task, "agentip"), ips(task, "autoip"), ips(task, "containerip")) == ([agent], [agent], [agent])
    # bridges: agentip and autoip are the agent, containerip the bridge address
    assert (ips("docker-on-bridge", "agentip"), ips("docker-on-bridge", "autoip"), ips("docker-on-bridge", "containerip")) == (
        ["172.17.0.4"], ["172.17.0.4"], ["172.18.0.2"])
    assert (ips("ucr-on-bridge", "agentip"), ips("ucr-on-bridge", "autoip"), ips("ucr-on-bridge", "containerip")) == (
        ["172.17.0.3"], ["172.17.0.3"], ["172.31.254.3"])
    # the dcos overlay: agentip is the agent, autoip and containerip the overlay address
    assert (ips("docker-on-dcos", "agentip"), ips("docker-on-dcos", "autoip"), ips("docker-on-dcos", "containerip")) == (
        ["172.17.0.4"], ["9.0.2.130"], ["9.0.2.130"])
    # Docker IPv6: AAAA on autoip and containerip
    assert ips("docker-on-ipv6", "autoip", "AAAA") == ips("docker-on-ipv6", "containerip", "AAAA") == ["fd01:b::2:8000:0:2"]
    assert ips("docker-on-ipv6", "agentip", "AAAA") == []


def test_operator_api_ipv6_task_on_dcos_gets_agent_a_and_container_aaaa():
    """§1.4: host first, then netinfo, one IPv4 and one IPv6."""
    records = derived_of(OPERATOR_API).records
    assert records["docker-on-ipv6.marathon.mesos./A"].rdata == ["172.17.0.4"]
    assert records["docker-on-ipv6.marathon.mesos./AAAA"].rdata == ["fd01:b::2:8000:0:2"]
    assert records["docker-on-ipv6.marathon.slave.mesos./A"].rdata == ["172.17.0.4"]
    assert "docker-on-ipv6.marathon.slave.mesos./AAAA" not in records


def test_dns_hostname_agent_is_refused_not_guessed():
    """An agent known only by host name: Mesos-DNS would resolve it (or publish the name as an
    "IP", issue #509); a pure derivation does neither, and says so."""
    derived = derived_of(FIXTURES / "mesos-operator-api" / "dns-hostname.json")
    assert "slave.mesos./A" not in derived.records
    assert not any(".slave.mesos." in key or ".agentip." in key for key in derived.records)
    assert derived.records["test.marathon.mesos./A"].rdata == ["127.0.0.1"]  # netinfo still answers
    assert [(r.subject.split()[0], r.value) for r in derived.rejections] == [("agent", "localhost"), ("task", "localhost")]
