"""The lease check of container addresses (processors/dns/leases.py): an address inside a
configured overlay gets names only inside its agent's lease; outside, it is left out of every
name and rejected; a lease that arrives after the task brings the names back. Expected
records are written out as zone lines (the task's own names only)."""

from __future__ import annotations

from ipaddress import ip_network

from processors.dns.config import DnsConfig
from processors.dns.derive import derive_records
from processors.dns.leases import OverlayLeases
from processors.dns.table import DnsTable
from tests.unit.dns_derive.entities import AGENT, FRAMEWORK, Container, PortMapping, task
from tests.unit.dns_derive.scenarios import zone_lines

NETWORKS = {"dcos": ip_network("9.0.0.0/8"), "dcos6": ip_network("fd01:b::/64")}
LEASED = {"dcos": "9.0.1.0/24", "dcos6": "fd01:b:0:0:1::/80"}
TASK_ID = "web.0ef76549-2630-11e8-af52-70b3d5800001"
AGENT_IP = AGENT.ip


def view(leases: dict[str, dict[str, str]]) -> OverlayLeases:
    return OverlayLeases(NETWORKS, lambda agent_id: leases.get(agent_id, {}))


def derived(*ips: str, leases=None, config: DnsConfig | None = None, **fields):
    found = derive_records({"fw-1/web": task("web", ips=ips, **fields)}, {AGENT.id: AGENT}, {FRAMEWORK.id: FRAMEWORK}, {},
                           config or DnsConfig(mesos_copy=False), view({AGENT.id: LEASED} if leases is None else leases))
    lines = [line for line in zone_lines(found) if line.startswith(("web.", "web-"))]
    return lines, [f"{r.subject}: {r.value}: {r.why}" for r in found.rejections]


def agent_names() -> list[str]:
    return [f"web-zahih-s3.marathon.mesos. 60 IN A {AGENT_IP}", f"web-zahih-s3.marathon.slave.mesos. 60 IN A {AGENT_IP}",
            f"web.marathon.agentip.dcos.thisdcos.directory. 5 IN A {AGENT_IP}", f"web.marathon.mesos. 60 IN A {AGENT_IP}",
            f"web.marathon.slave.mesos. 60 IN A {AGENT_IP}"]


def outside(ip: str, overlay: str, lease: str) -> str:
    return (f"task {TASK_ID}: {ip}: address in overlay {overlay} ({NETWORKS[overlay]}) but outside agent {AGENT.id}'s "
            f"lease {lease}: no names with this address")


def test_addresses_inside_the_agents_lease_get_every_name():
    lines, rejected = derived("9.0.1.5", "fd01:b::1:0:0:5")
    assert lines == sorted(agent_names() + [
        "web-zahih-s3.marathon.mesos. 60 IN AAAA fd01:b::1:0:0:5",
        "web.marathon.autoip.dcos.thisdcos.directory. 5 IN A 9.0.1.5",
        "web.marathon.autoip.dcos.thisdcos.directory. 5 IN AAAA fd01:b::1:0:0:5",
        "web.marathon.containerip.dcos.thisdcos.directory. 5 IN A 9.0.1.5",
        "web.marathon.containerip.dcos.thisdcos.directory. 5 IN AAAA fd01:b::1:0:0:5",
        "web.marathon.mesos. 60 IN AAAA fd01:b::1:0:0:5",
    ])
    assert rejected == []


def test_addresses_outside_the_lease_get_no_names_and_are_rejected():
    """DC/OS's sources (host, netinfo): the Mesos-DNS A is the agent, kept; the container's
    AAAA is dropped there too. ``autoip`` does not fall back to the agent."""
    lines, rejected = derived("9.0.2.5", "fd01:b::2:0:0:5")
    assert lines == sorted(agent_names())
    assert rejected == [outside("9.0.2.5", "dcos", "9.0.1.0/24"), outside("fd01:b::2:0:0:5", "dcos6", "fd01:b:0:0:1::/80")]


def test_an_agent_without_a_lease_of_the_overlay_publishes_none_of_its_addresses():
    lines, rejected = derived("9.0.1.5", leases={})
    assert lines == sorted(agent_names())
    assert rejected == [f"task {TASK_ID}: 9.0.1.5: address in overlay dcos (9.0.0.0/8), whose agent {AGENT.id} holds "
                        "no lease of it: no names with this address"]


def test_only_the_bad_address_goes_and_addresses_outside_every_overlay_are_not_checked():
    lines, rejected = derived("172.17.0.2", "fd01:b::2:0:0:5")
    assert "web.marathon.containerip.dcos.thisdcos.directory. 5 IN A 172.17.0.2" in lines
    assert "web.marathon.autoip.dcos.thisdcos.directory. 5 IN A 172.17.0.2" in lines
    assert not any("fd01:b::2" in line for line in lines)
    assert rejected == [outside("fd01:b::2:0:0:5", "dcos6", "fd01:b:0:0:1::/80")]


def test_upstream_first_source_rule_does_not_fall_back_to_the_agent():
    """``--dns-ip-sources netinfo,host --dns-ip-merge first``: netinfo reported an address, so
    it is the source; with that address refused, the task name has no address at all."""
    config = DnsConfig(mesos_copy=False, ip_sources=("netinfo", "host"), ip_merge="first")
    lines, _ = derived("9.0.2.5", config=config)
    assert not any(line.startswith(("web.marathon.mesos.", "web-zahih-s3.marathon.mesos.")) for line in lines)
    lines, _ = derived("9.0.1.5", config=config)
    assert "web.marathon.mesos. 60 IN A 9.0.1.5" in lines


def test_a_task_mapping_host_ports_keeps_autoip_on_the_agent():
    """dcos-net's rule is unchanged: a host port mapping makes ``autoip`` the agent."""
    mapped = Container(type="DOCKER", port_mappings=[PortMapping(host_port=31000, container_port=80)])
    lines, rejected = derived("9.0.2.5", container=mapped)
    assert f"web.marathon.autoip.dcos.thisdcos.directory. 5 IN A {AGENT_IP}" in lines
    assert not any("containerip" in line for line in lines)
    assert rejected == [outside("9.0.2.5", "dcos", "9.0.1.0/24")]


def test_a_lease_that_arrives_after_the_task_brings_its_names():
    leases: dict[str, dict[str, str]] = {}
    table = DnsTable(DnsConfig(mesos_copy=False), view(leases))
    table.put_many([("agent", AGENT.id, AGENT), ("framework", FRAMEWORK.id, FRAMEWORK),
                    ("task", "fw-1/web", task("web", ips=("9.0.1.5",)))])
    assert "web.marathon.containerip.dcos.thisdcos.directory./A" not in table.records
    assert [r.value for r in table.take_rejections()] == ["9.0.1.5"]
    leases[AGENT.id] = LEASED
    changes = table.put_leases(AGENT.id)
    assert changes["web.marathon.containerip.dcos.thisdcos.directory./A"].rdata == ["9.0.1.5"]
    assert changes["web.marathon.autoip.dcos.thisdcos.directory./A"].rdata == ["9.0.1.5"]
    assert table.rejections == {} and table.take_rejections() == []
    # The lease moves away (freed by hand, given again elsewhere): the names go, rejected again.
    leases[AGENT.id] = {"dcos": "9.0.7.0/24"}
    changes = table.put_leases(AGENT.id)
    assert changes["web.marathon.containerip.dcos.thisdcos.directory./A"] is None
    assert [r.why for r in table.take_rejections()] == [
        f"address in overlay dcos (9.0.0.0/8) but outside agent {AGENT.id}'s lease 9.0.7.0/24: no names with this address"]
