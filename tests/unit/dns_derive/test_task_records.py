"""The names of one task (reference §1.3-§1.5, §2.3), rule by rule, quirks included."""

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.dns.config import DnsConfig
from processors.dns.derive import task_records
from processors.dns.names import agent_tail, task_hash
from producers.mesos.normalize import task_of
from producers.problems import Problems
from tests.unit.dns_derive.entities import (
    AGENT,
    FRAMEWORK,
    Container,
    Discovery,
    DiscoveryPort,
    PortMapping,
    PortRange,
    replace,
    running,
    task,
)

TASK_ID = "web.0ef76549-2630-11e8-af52-70b3d5800001"
ZBASE32 = "ybndrfg8ejkmcpqxot1uwisza345h769"


def zbase32_prefix(text: str) -> str:
    """An independent z-base-32 of SHA-1, bit string by bit string."""
    bits = "".join(f"{byte:08b}" for byte in hashlib.sha1(text.encode()).digest())
    return "".join(ZBASE32[int(bits[i : i + 5], 2)] for i in range(0, 25, 5))


def names(found) -> dict[str, list[str]]:
    return {key: sorted(rdata) for key, rdata in found.contributions}


def mesos_only(found) -> dict[str, list[str]]:
    return {key: rdata for key, rdata in names(found).items() if ".thisdcos." not in key}


H = zbase32_prefix(TASK_ID)


@settings(max_examples=200, derandomize=True)
@given(st.text(max_size=80))
def test_task_hash_is_zbase32_of_sha1(task_id):
    assert task_hash(task_id) == zbase32_prefix(task_id)


def test_known_hashes_and_agent_tails():
    assert task_hash("sleep.bf108244-ec7f-11e5-b98e-82ce0fb60967") == "ctih1"
    assert agent_tail("20160107-001256-134875658-5050-27524-S3") == "s3"
    assert agent_tail("S12") == "s12"


def test_task_without_discovery_info():
    """A, .slave and both SRV families (with and without .slave), every port, tcp and udp."""
    found = task_records(task(ips=("10.0.0.3",), port_ranges=[PortRange(31000, 31001)]), AGENT, FRAMEWORK, DnsConfig())
    c = f"web-{H}-s3"
    srv = [f"0 1 31000 {c}.marathon.slave.mesos.", f"0 1 31001 {c}.marathon.slave.mesos."]
    assert mesos_only(found) == {
        "web.marathon.mesos./A": ["10.0.0.3"],
        f"{c}.marathon.mesos./A": ["10.0.0.3"],
        "web.marathon.slave.mesos./A": ["10.0.0.3"],
        f"{c}.marathon.slave.mesos./A": ["10.0.0.3"],
        "_web._tcp.marathon.slave.mesos./SRV": srv,
        "_web._udp.marathon.slave.mesos./SRV": srv,
        "_web._tcp.marathon.mesos./SRV": srv,
        "_web._udp.marathon.mesos./SRV": srv,
    }
    assert (found.task, found.framework, found.rejections) == (TASK_ID, "marathon", ())


def test_task_with_discovery_info_named_ports_and_protocols():
    """Host-port SRVs only under .slave; discovery ports -> the canonical name (not .slave),
    ``_<port name>._<t>._<proto>`` for named ports, both protocols when none is given."""
    discovery = Discovery(
        name="web",
        ports=[
            DiscoveryPort(number=8080, protocol="tcp", name="http"),
            DiscoveryPort(number=5353, protocol="UDP"),
            DiscoveryPort(number=9000, protocol="", name="Admin_Port"),
        ],
    )
    found = task_records(task(discovery=discovery, port_ranges=[PortRange(31000, 31000)]), AGENT, FRAMEWORK, DnsConfig())
    c = f"web-{H}-s3"
    slave = [f"0 1 31000 {c}.marathon.slave.mesos."]
    target = f"{c}.marathon.mesos."
    srvs = {key: rdata for key, rdata in mesos_only(found).items() if key.endswith("/SRV")}
    assert srvs == {
        "_web._tcp.marathon.slave.mesos./SRV": slave,
        "_web._udp.marathon.slave.mesos./SRV": slave,
        "_web._tcp.marathon.mesos./SRV": [f"0 1 8080 {target}", f"0 1 9000 {target}"],
        "_http._web._tcp.marathon.mesos./SRV": [f"0 1 8080 {target}"],
        "_web._udp.marathon.mesos./SRV": [f"0 1 5353 {target}", f"0 1 9000 {target}"],
        "_admin-port._web._tcp.marathon.mesos./SRV": [f"0 1 9000 {target}"],
        "_admin-port._web._udp.marathon.mesos./SRV": [f"0 1 9000 {target}"],
    }


def test_discovery_info_name_overrides_the_task_name_and_port_zero_is_kept():
    """Mesos-DNS publishes a DiscoveryInfo port 0 as it is (dcos-net's VIP code drops it, DNS does not)."""
    found = task_records(task("app", discovery=Discovery(name="api", ports=[DiscoveryPort(number=0, protocol="tcp")])), AGENT, FRAMEWORK, DnsConfig())
    assert "api.marathon.mesos./A" in names(found) and "app.marathon.mesos./A" not in names(found)
    assert names(found)["_api._tcp.marathon.mesos./SRV"][0].startswith("0 1 0 api-")


def test_legacy_raw_discovery_name_duplicate():
    """Marathon app /test/temp/server: task and DiscoveryInfo name ``server.temp.test``."""
    task_id = "server.temp.test.0ef76549-2630-11e8-af52-70b3d5800001"
    server = task(
        "server.temp.test",
        id=task_id,
        ips=("10.0.0.3",),
        discovery=Discovery(name="server.temp.test", ports=[DiscoveryPort(number=80, protocol="tcp")]),
    )
    h = zbase32_prefix(task_id)
    found = mesos_only(task_records(server, AGENT, FRAMEWORK, DnsConfig()))
    assert found["server-temp-test.marathon.mesos./A"] == ["10.0.0.3"]
    assert found["server.temp.test.marathon.mesos./A"] == ["10.0.0.3"]
    assert found[f"server.temp.test-{h}-s3.marathon.mesos./A"] == ["10.0.0.3"]
    assert found["_server.temp.test._tcp.marathon.mesos./SRV"] == [f"0 1 80 server.temp.test-{h}-s3.marathon.mesos."]
    assert found["_server-temp-test._tcp.marathon.mesos./SRV"] == [f"0 1 80 server-temp-test-{h}-s3.marathon.mesos."]
    without = mesos_only(task_records(server, AGENT, FRAMEWORK, DnsConfig(legacy_discovery_names=False)))
    assert not any(key.startswith(("server.temp.test", "_server.temp.test")) for key in without)
    assert len(found) == 2 * len(without)


def test_framework_with_a_dot_keeps_it_in_mesos_and_loses_it_in_dcos_zones():
    prod = replace(FRAMEWORK, name="marathon.prod")
    found = names(task_records(task("/mygroup/myapp", ips=("9.0.0.7",)), AGENT, prod, DnsConfig()))
    assert found["mygroupmyapp.marathon.prod.mesos./A"] == ["10.0.0.3"]
    assert found["mygroupmyapp.marathon-prod.autoip.dcos.thisdcos.directory./A"] == ["9.0.0.7"]
    # A Marathon task name is the app id reversed and dot-joined.
    found = names(task_records(task("myapp.mygroup", ips=("9.0.0.7",)), AGENT, FRAMEWORK, DnsConfig()))
    assert "myapp-mygroup.marathon.mesos./A" in found
    assert "myapp-mygroup.marathon.autoip.dcos.thisdcos.directory./A" in found


@pytest.mark.parametrize(
    ("name", "rfc952", "label"),
    [
        ("hello" + "-" * 56 + "f", True, "hellof"),  # the trimCut refill at the 24-character cut
        ("hello" + "-" * 56 + "f", False, "hello" + "-" * 56 + "f"),
        ("fd%gsf---gs7-f$gs--d7fddg-123", False, "fdgsf---gs7-fgs--d7fddg-123"),
        ("89fdgsf---gs7-fgs--d7fddg-123", True, "fdgsf---gs7-fgs--d7fddg1"),  # no leading digits, cut at 24
        ("Web_Server", False, "web-server"),
    ],
)
def test_task_label_rules(name, rfc952, label):
    found = names(task_records(task(name), AGENT, FRAMEWORK, DnsConfig(enforce_rfc952=rfc952)))
    assert f"{label}.marathon.slave.mesos./A" in found


@pytest.mark.parametrize(
    ("framework", "rfc952", "zone"),
    [
        ("chronos with a space AND MIXED CASE-2.0.1", False, "chronoswithaspaceandmixedcase-2.0.1"),
        ("chronos with a space AND MIXED CASE-2.0.1", True, "chronoswithaspaceandmixe"),
    ],
)
def test_framework_domain_frag(framework, rfc952, zone):
    found = names(task_records(task(), AGENT, replace(FRAMEWORK, name=framework), DnsConfig(enforce_rfc952=rfc952)))
    assert f"web.{zone}.slave.mesos./A" in found


@pytest.mark.parametrize(
    ("sources", "merge", "a", "aaaa"),
    [
        (("host", "netinfo"), "dcos", ["10.0.0.3"], ["fd01:b::2"]),  # DC/OS: agent A, container AAAA
        (("netinfo", "host"), "dcos", ["9.0.0.5"], ["fd01:b::2"]),
        (("netinfo", "mesos", "host"), "first", ["9.0.0.5", "9.0.0.6"], ["fd01:b::2"]),  # all of netinfo
        (("host", "netinfo"), "first", ["10.0.0.3"], []),
        (("mesos", "netinfo"), "first", ["172.17.0.9"], []),
        (("docker", "host"), "first", ["172.17.0.8"], []),
        (("docker", "mesos", "host"), "dcos", ["172.17.0.8"], []),
    ],
)
def test_ip_sources_and_merge_rules(sources, merge, a, aaaa):
    labels = {"MesosContainerizer.NetworkSettings.IPAddress": "172.17.0.9", "Docker.NetworkSettings.IPAddress": "172.17.0.8"}
    statuses = [running("9.0.0.5", "fd01:b::2", "9.0.0.6", labels=labels)]
    found = names(task_records(task(statuses=statuses), AGENT, FRAMEWORK, DnsConfig(ip_sources=sources, ip_merge=merge)))
    assert found.get("web.marathon.mesos./A", []) == a
    assert found.get("web.marathon.mesos./AAAA", []) == aaaa
    assert found["web.marathon.slave.mesos./A"] == ["10.0.0.3"]  # .slave is always the agent


def test_netinfo_reads_the_newest_running_status_only():
    statuses = [
        replace(running("9.0.0.1", timestamp=1.0), state="TASK_STARTING"),
        running("9.0.0.2", timestamp=2.0),
        replace(running("9.0.0.3", timestamp=3.0), state="TASK_KILLING"),
    ]
    found = names(task_records(task(statuses=statuses), AGENT, FRAMEWORK, DnsConfig(ip_sources=("netinfo",))))
    assert found["web.marathon.mesos./A"] == ["9.0.0.2"]
    # dcos-dns reads the newest status that reports any address.
    assert found["web.marathon.containerip.dcos.thisdcos.directory./A"] == ["9.0.0.3"]


@pytest.mark.parametrize("state", ["TASK_STAGING", "TASK_STARTING", "TASK_KILLING", "TASK_FINISHED", "TASK_LOST"])
def test_only_running_tasks_have_names(state):
    assert task_records(task(state=state), AGENT, FRAMEWORK, DnsConfig()).contributions == ()


def test_tasks_wait_for_their_agent_and_framework():
    assert task_records(task(), None, FRAMEWORK, DnsConfig()).contributions == ()
    assert task_records(task(), AGENT, None, DnsConfig()).contributions == ()
    assert task_records(task(), None, None, DnsConfig()).rejections == ()


def test_dcos_autoip_rules():
    def dcos(t):
        found = names(task_records(t, AGENT, FRAMEWORK, DnsConfig()))
        return tuple(found.get(f"web.marathon.{kind}.dcos.thisdcos.directory./A") for kind in ("agentip", "containerip", "autoip"))

    overlay = task(ips=("9.0.0.5",))
    assert dcos(overlay) == (["10.0.0.3"], ["9.0.0.5"], ["9.0.0.5"])
    # no NetworkInfo at all: no containerip, autoip is the agent
    assert dcos(task(statuses=[running()])) == (["10.0.0.3"], None, ["10.0.0.3"])
    # any host-port mapping makes autoip the agent
    bridged = replace(overlay, container=Container(type="DOCKER", docker_network="BRIDGE", port_mappings=[PortMapping(31000, 80)]))
    assert dcos(bridged) == (["10.0.0.3"], ["9.0.0.5"], ["10.0.0.3"])
    host_scope = replace(overlay, discovery=Discovery(ports=[DiscoveryPort(80, "tcp", labels={"network-scope": "host"})]))
    assert dcos(host_scope)[2] == ["10.0.0.3"]
    container_scope = replace(overlay, discovery=Discovery(ports=[DiscoveryPort(80, "tcp", labels={"network-scope": "container"})]))
    assert dcos(container_scope)[2] == ["9.0.0.5"]
    legacy_vip = replace(overlay, labels={"VIP_PORT0": "tcp://1.2.3.4:5000"}, port_ranges=[PortRange(31000, 31000)])
    assert dcos(legacy_vip)[2] == ["10.0.0.3"]
    # dcos-net's port parsing fails as a whole on a VIP_PORT past the task's ports: no mapping
    past_the_ports = replace(bridged, labels={"VIP_PORT3": "tcp://1.2.3.4:5000"}, port_ranges=[PortRange(31000, 31000)])
    assert dcos(past_the_ports)[2] == ["9.0.0.5"]


def test_ipv6_container_in_dcos_zones():
    found = names(task_records(task(ips=("172.19.0.2", "fd01:b::2:8000:0:2")), AGENT, FRAMEWORK, DnsConfig()))
    assert found["web.marathon.autoip.dcos.thisdcos.directory./AAAA"] == ["fd01:b::2:8000:0:2"]
    assert found["web.marathon.containerip.dcos.thisdcos.directory./A"] == ["172.19.0.2"]
    assert "web.marathon.agentip.dcos.thisdcos.directory./AAAA" not in found


def test_names_that_cannot_be_dns_are_refused_and_the_rest_published():
    # A 63-character task label is fine; its canonical ``<t>-<h>-<s>`` (72 characters) is not.
    long_name = "a" * 63
    found = task_records(task(long_name, port_ranges=[PortRange(80, 80)]), AGENT, FRAMEWORK, DnsConfig())
    published = names(found)
    assert f"{long_name}.marathon.mesos./A" in published
    assert not any(f"{long_name}-" in key for key in published)
    assert "_" + long_name not in str(published)  # ``_<t>`` is 64 characters: no SRV either
    refused = {r.value for r in found.rejections}
    assert f"{long_name}-{task_hash(task(long_name).id)}-s3.marathon.mesos." in refused
    assert f"_{long_name}._tcp.marathon.slave.mesos." in refused
    assert all(r.why.startswith("not a DNS name") and r.subject == f"task {task(long_name).id}" for r in found.rejections)
    # dcos zones still get the task (one label each)
    assert f"{long_name}.marathon.agentip.dcos.thisdcos.directory./A" in published


def test_a_name_that_sanitises_to_nothing_is_refused():
    found = task_records(task("$$$"), AGENT, FRAMEWORK, DnsConfig())
    assert found.contributions == ()
    assert [(r.value, r.why) for r in found.rejections] == [
        ("$$$", "task name has no DNS label left after sanitising"),
        ("$$$ (marathon)", "task or framework name has no DNS label left: no dcos-dns names"),
    ]
    nameless = replace(FRAMEWORK, name="///")
    found = task_records(task(), AGENT, nameless, DnsConfig())
    assert found.contributions == ()
    assert {r.value for r in found.rejections} == {"///", "web (///)"}


def test_raw_discovery_name_that_is_not_dns_only_loses_the_legacy_names():
    found = task_records(task("my app", discovery=Discovery(name="my app")), AGENT, FRAMEWORK, DnsConfig())
    assert "myapp.marathon.mesos./A" in names(found)
    assert [r.value for r in found.rejections] == ["my app"]
    assert found.rejections[0].why.startswith("the raw DiscoveryInfo name is not DNS")


def test_agent_without_ip_loses_agent_names_only():
    hostname_only = replace(AGENT, hostname="agent-1.example", ip=None)
    found = task_records(task(ips=("9.0.0.5",)), hostname_only, FRAMEWORK, DnsConfig())
    published = names(found)
    assert published["web.marathon.mesos./A"] == ["9.0.0.5"]  # netinfo still answers
    assert not any(".slave." in key or ".agentip." in key for key in published)
    assert [r.value for r in found.rejections] == ["agent-1.example"]


def test_names_only_the_copy_makes_too_long_stay_in_the_mesos_zone():
    """``mesos.thisdcos.directory`` is 19 characters longer than ``mesos``: a name of 236-254
    characters is published under ``mesos`` only, and the missing copy is reported."""
    from processors.dns.derive import derive_records

    long_framework = replace(FRAMEWORK, name=".".join(["f" * 55] * 4))  # 223 characters
    derived = derive_records({"web": task(id="web")}, {AGENT.id: AGENT}, {FRAMEWORK.id: long_framework}, {})
    fw = long_framework.name
    assert len(f"web.{fw}.mesos.thisdcos.directory.") == 253
    assert f"web.{fw}.mesos.thisdcos.directory./A" in derived.records
    assert f"web.{fw}.slave.mesos./A" in derived.records  # 240 characters
    assert f"web.{fw}.slave.mesos.thisdcos.directory./A" not in derived.records  # 259
    assert f"web.{fw}.slave.mesos.thisdcos.directory." in {r.value for r in derived.rejections}


@pytest.mark.parametrize("shape", ["operator-api", "master-state"])
def test_every_value_of_a_repeated_status_ip_label_is_an_address(shape):
    """Mesos-DNS reads every value of the Docker/Mesos IP label, not only the last one."""
    entries = [{"key": "Docker.NetworkSettings.IPAddress", "value": "172.17.0.8"},
               {"key": "other", "value": "x"},
               {"key": "Docker.NetworkSettings.IPAddress", "value": "172.17.0.9"}]
    raw = {"name": "web", "state": "TASK_RUNNING",
           "statuses": [{"state": "TASK_RUNNING", "timestamp": 2.0,
                         "labels": {"labels": entries} if shape == "operator-api" else entries}]}
    if shape == "operator-api":
        raw.update(task_id={"value": TASK_ID}, agent_id={"value": AGENT.id}, framework_id={"value": FRAMEWORK.id})
    else:
        raw.update(id=TASK_ID, slave_id=AGENT.id, framework_id=FRAMEWORK.id)
    problems = Problems()
    parsed = task_of(raw, problems)
    assert problems.found == []
    assert parsed.statuses[-1].labels["Docker.NetworkSettings.IPAddress"] == "172.17.0.9"
    assert parsed.statuses[-1].repeated_labels == {"Docker.NetworkSettings.IPAddress": ["172.17.0.8", "172.17.0.9"]}
    # Upstream Mesos-DNS uses every address of the first source that has any; DC/OS's merge
    # keeps the first IPv4 of all sources.
    upstream = DnsConfig(ip_sources=("docker", "host"), ip_merge="first")
    assert names(task_records(parsed, AGENT, FRAMEWORK, upstream))["web.marathon.mesos./A"] == ["172.17.0.8", "172.17.0.9"]
    dcos = DnsConfig(ip_sources=("docker", "host"), ip_merge="dcos")
    assert names(task_records(parsed, AGENT, FRAMEWORK, dcos))["web.marathon.mesos./A"] == ["172.17.0.8"]
