"""Bracketed IPv6 in libprocess PIDs and HOST:PORT values: read everywhere an endpoint is read
(the master state's leader and PIDs, --masters, the simulator), and named in DNS as AAAA."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner

from cli.main import main as cli
from processors.dns.derive import derive_records
from producers.mesos.normalize import master_of
from producers.mesos.snapshot import parse_master_state
from producers.problems import InputRejected
from schemas.addresses import parse_host_port, parse_pid
from schemas.mesos import Cluster
from simulator.convert import pid_address


@pytest.mark.parametrize(("text", "expected"), [
    ("slave(1)@10.0.0.1:5051", ("10.0.0.1", 5051)),
    ("scheduler(1)@[2001:db8::1]:25501", ("2001:db8::1", 25501)),
    ("master@[fd00::1]:5050", ("fd00::1", 5050)),
    ("master@[FD00:0::1]:5050", ("fd00::1", 5050)),  # canonical text
    ("scheduler-1@marathon.example:8080", ("marathon.example", 8080)),
    ("master@fd00::1:5050", None),  # unbracketed IPv6: where would the port start?
    ("master@[10.0.0.1]:5050", None),  # brackets are for IPv6 only
    ("master@[not-an-ip]:5050", None),
    ("master@10.0.0.1:65536", None),
    ("master@10.0.0.1", None),
    ("10.0.0.1:5050", None),  # no id@
    (None, None),
    (5050, None),
])
def test_pids(text, expected):
    assert parse_pid(text) == expected
    assert pid_address(text) == (expected or (None, None))


@pytest.mark.parametrize(("text", "expected"), [
    ("10.0.0.1:5050", ("10.0.0.1", 5050)),
    ("[fd00::1]:5050", ("fd00::1", 5050)),
    ("master1.example:5050", ("master1.example", 5050)),
    ("fd00::1:5050", None),
    ("[fd00::1]", None),
    ("[fd00::1]:x", None),
])
def test_host_ports(text, expected):
    assert parse_host_port(text) == expected


def test_masters_take_ipv6_and_a_bad_one_is_refused_clearly():
    master = master_of("[fd00::1]:5050")
    assert (master.hostname, master.ip, master.port) == ("fd00::1", "fd00::1", 5050)
    with pytest.raises(InputRejected, match=r"expected HOST:PORT or \[IPv6\]:PORT, got 'fd00::1:5050'"):
        master_of("fd00::1:5050")
    result = CliRunner().invoke(cli, ["produce", "--mesos", "http://127.0.0.1:1", "--masters", "[fd00::1]:5050,fd00::2:5050"])
    assert result.exit_code == 2 and "fd00::2:5050" in result.output and "[IPv6]:PORT" in result.output


def test_an_ipv6_master_state_is_read_whole_and_named_in_aaaa_records():
    """The polling path: /master/state with an IPv6 leader and an IPv6 framework PID."""
    state = {
        "leader": "master@[fd00::1]:5050",
        "slaves": [{"id": "S0", "hostname": "fd00::21", "pid": "slave(1)@[fd00::21]:5051"}],
        "frameworks": [{"id": "F0", "name": "marathon", "hostname": "fd00::2",
                        "pid": "scheduler(1)@[2001:db8::1]:25501", "active": True, "tasks": []}],
    }
    snapshot, leader, problems = parse_master_state(orjson.dumps(state))
    assert problems.found == []
    assert (leader.hostname, leader.ip, leader.port) == ("fd00::1", "fd00::1", 5050)
    framework = snapshot.frameworks["F0"]
    assert (framework.ip, framework.port) == ("2001:db8::1", 25501)
    assert (snapshot.agents["S0"].ip, snapshot.agents["S0"].port) == ("fd00::21", 5051)

    derived = derive_records({}, snapshot.agents, snapshot.frameworks, {"cluster": Cluster(leader=leader, masters=[leader])})
    records = {key: value.rdata for key, value in derived.records.items()}
    assert records["leader.mesos./AAAA"] == ["fd00::1"]
    assert records["_leader._tcp.mesos./SRV"] == ["0 1 5050 leader.mesos."]
    assert records["marathon.mesos./AAAA"] == ["2001:db8::1"]
    assert records["_framework._tcp.marathon.mesos./SRV"] == ["0 1 25501 marathon.mesos."]
    assert records["slave.mesos./AAAA"] == ["fd00::21"]
    assert "leader.mesos./A" not in records and "marathon.mesos./A" not in records
