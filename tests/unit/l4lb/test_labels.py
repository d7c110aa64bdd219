"""Reading VIP declarations from task labels (reference §3.1), one rule per test."""

import pytest

from processors.l4lb.labels import BadVip, Declaration, Rejection, declarations_of, split_vip
from schemas.mesos import Container, Discovery, DiscoveryPort, PortMapping, PortRange, Task


def task(ports=(), labels=None, port_ranges=(), container=None) -> Task:
    return Task(
        id="web.1",
        name="web",
        framework_id="fw",
        agent_id="a1",
        state="TASK_RUNNING",
        labels=labels or {},
        discovery=Discovery(ports=list(ports)),
        port_ranges=list(port_ranges),
        container=container,
    )


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("/mygroup/myapp:80", ("/mygroup/myapp", True, 80)),
        ("merp:5000", ("merp", True, 5000)),
        ("1.2.3.4:8080", ("1.2.3.4", False, 8080)),
        ("[fd01:c::1]:80", ("fd01:c::1", False, 80)),
        ("fd01:c::1:80", ("fd01:c::1", False, 80)),  # split at the last ':'
        ("[FD01:000C::0001]:443", ("fd01:c::1", False, 443)),  # canonical form for the key
        ("name:65535", ("name", True, 65535)),
    ],
)
def test_split_vip(value, parsed):
    assert split_vip(value) == parsed


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("missing-port", "no ':<port>'"),
        ("invalid-port::1234", "names cannot hold ':'"),
        ("web:0", "outside 1-65535"),
        ("web:65536", "outside 1-65535"),
        ("web:http", "not a number"),
        ("web:", "not a number"),
        ("web:+80", "not a number"),
        (":80", "no VIP name or IP"),
        ("[1.2.3.4]:80", "only IPv6 addresses go in brackets"),
        ("[web]:80", "only IPv6 addresses go in brackets"),
        ("fe80::1%eth0:80", "scoped IPv6"),
    ],
)
def test_split_vip_refuses(value, why):
    with pytest.raises(BadVip, match=__import__("re").escape(why)):
        split_vip(value)


def test_discovery_labels_with_scope_and_protocol():
    found, rejected = declarations_of(
        task(
            [
                DiscoveryPort(80, "tcp", labels={"VIP_0": "/web:80", "VIP_1": "10.1.2.3:5000"}),
                DiscoveryPort(31000, "udp", labels={"vip": "/dns:53", "network-scope": "host"}),
                DiscoveryPort(8080, "tcp", labels={"VIP_3798f247-30d5-46d5": "/sdk:8080", "network-scope": "container"}),
                DiscoveryPort(9090, "tcp", labels={"network-scope": "host", "Vip_0": "/not-a-vip-key:1"}),
            ]
        )
    )
    assert rejected == []
    assert found == [
        Declaration("VIP_0", "/web:80", "tcp", "/web", True, 80, "container", 80),
        Declaration("VIP_1", "10.1.2.3:5000", "tcp", "10.1.2.3", False, 5000, "container", 80),
        Declaration("vip", "/dns:53", "udp", "/dns", True, 53, "host", 31000),
        Declaration("VIP_3798f247-30d5-46d5", "/sdk:8080", "tcp", "/sdk", True, 8080, "container", 8080),
    ]


def test_a_port_mapping_turns_a_container_port_into_its_host_port():
    """§3.1.3: dcos-net merges port mappings into discovery ports by (protocol, port)."""
    mapped = Container(type="DOCKER", docker_network="USER", port_mappings=[PortMapping(31005, 8080, "tcp")])
    found, _ = declarations_of(
        task([DiscoveryPort(8080, proto, labels={"VIP_0": "/web:80"}) for proto in ("tcp", "udp")], container=mapped)
    )
    assert [(d.protocol, d.scope, d.port) for d in found] == [("tcp", "host", 31005), ("udp", "container", 8080)]


def test_every_bad_declaration_is_rejected_alone():
    found, rejected = declarations_of(
        task(
            [
                DiscoveryPort(80, "tcp", labels={"VIP_0": "missing-port", "VIP_1": "/good:80", "VIP_2": "invalid-port::1234"}),
                DiscoveryPort(81, "", labels={"VIP_0": "/no-protocol:81"}),
                DiscoveryPort(82, "sctp", labels={"VIP_0": "/sctp:82"}),
                DiscoveryPort(0, "tcp", labels={"VIP_0": "/port-zero:80"}),
                DiscoveryPort(2**70, "tcp", labels={"VIP_0": "/port-huge:80"}),  # JSON carries any integer
                DiscoveryPort(83, "tcp", labels={"VIP_0": "/scope:83", "network-scope": "pod"}),
                DiscoveryPort(0, "tcp", labels={"network-scope": "container"}),  # no VIP: nothing to say
            ],
            labels={
                "VIP_PORT0": "tcp://legacy:80",
                "VIP_PORT1": "http://legacy:80",
                "VIP_PORTX": "tcp://x:1",
                "VIP_PORT5": "tcp://far:1",
            },
            port_ranges=[PortRange(31000, 31000)],
        )
    )
    assert [(d.label, d.address) for d in found] == [("VIP_1", "/good"), ("VIP_PORT0", "legacy")]
    assert [(r.label, r.value) for r in rejected] == [
        ("VIP_0", "missing-port"),
        ("VIP_2", "invalid-port::1234"),
        ("VIP_0", "/no-protocol:81"),
        ("VIP_0", "/sctp:82"),
        ("VIP_0", "/port-zero:80"),
        ("VIP_0", "/port-huge:80"),
        ("VIP_0", "/scope:83"),
        ("VIP_PORT1", "http://legacy:80"),
        ("VIP_PORT5", "tcp://far:1"),
        ("VIP_PORTX", "tcp://x:1"),
    ]
    assert all(isinstance(r, Rejection) and r.task_id == "web.1" and r.why for r in rejected)
    assert "protocol ''" in rejected[2].why and "index 5 but the task has 1 port" in rejected[8].why
    assert rejected[5].why == f"discovery port number {2**70} is not a port"


def test_legacy_labels_index_the_expanded_port_resources():
    found, rejected = declarations_of(
        task(
            labels={
                "vip_PORT0": "tcp://10.22.126.49:5000",
                "VIP_PORT2": "udp://dns:53",
                "VIP_port3": "tcp://[fd01::5]:80",
                "other": "x",
            },
            port_ranges=[PortRange(9999, 10000), PortRange(20000, 20001)],
        )
    )
    assert rejected == []
    # In label-key order (sorted, so the output never depends on label order in the input).
    assert [(d.protocol, d.address, d.named, d.vip_port, d.scope, d.port) for d in found] == [
        ("udp", "dns", True, 53, "host", 20000),
        ("tcp", "fd01::5", False, 80, "host", 20001),
        ("tcp", "10.22.126.49", False, 5000, "host", 9999),
    ]
