"""Common mistakes get one line ("Error: ..."), exit 1, no traceback; --version; one-shot
commands with an unreachable Kafka fail fast naming the address."""

from __future__ import annotations

import socket
import time

from click.testing import CliRunner

from cli.main import main
from runtime.ports import free_port
from tests.operations.processes import start

NODE = ("node", "--bootstrap", "127.0.0.1:1", "--node-id", "n")


def one_line_error(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output, result.output
    return result.output.strip()


def test_bad_agent_ip():
    assert one_line_error(*NODE, "--agent-ip", "10.0.0.300") == "Error: --agent-ip '10.0.0.300' is not an IP address"


def test_no_roles_and_unknown_roles():
    assert one_line_error(*NODE, "--agent-ip", "10.0.0.1", "--roles", "") == (
        "Error: no roles given: --roles takes one or more of l4lb,dns,haproxy,overlay")
    assert one_line_error(*NODE, "--agent-ip", "10.0.0.1", "--roles", "dns,l7") == (
        "Error: unknown role(s) l7 in --roles; known: l4lb,dns,haproxy,overlay")


def test_missing_netns():
    assert one_line_error(*NODE, "--agent-ip", "10.0.0.1", "--netns", "wf-no-such-ns") == (
        "Error: network namespace 'wf-no-such-ns' (--netns) does not exist; `ip netns add wf-no-such-ns` creates it")


def test_missing_netns_of_the_inspecting_commands():
    # Checked before anything else is asked: no node, no Kafka.
    for command in (("vips",), ("overlay",)):
        assert one_line_error(*command, "--bootstrap", "127.0.0.1:1", "--netns", "wf-no-such-ns") == (
            "Error: network namespace 'wf-no-such-ns' (--netns) does not exist; `ip netns add wf-no-such-ns` creates it")


def test_ports_in_use_are_named():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert one_line_error(*NODE, "--agent-ip", "10.0.0.1", "--roles", "dns", "--dns-listen", f"127.0.0.1:{port}") == (
            f"Error: the DNS listen address (--dns-listen) 127.0.0.1:{port} is in use (TCP): another process listens there")
        assert one_line_error(*NODE, "--agent-ip", "10.0.0.1", "--roles", "dns", "--dns-listen",
                              f"127.0.0.1:{free_port()}", "--dns-http", f"127.0.0.1:{port}") == (
            f"Error: the Mesos-DNS HTTP API address (--dns-http) 127.0.0.1:{port} is in use (TCP): another process listens there")


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("wayfinder ")


def test_one_shot_commands_with_an_unreachable_kafka():
    address = f"127.0.0.1:{free_port()}"
    # Side by side, as processes: each waits out its 10 s alone.
    started = time.monotonic()
    running = [start(*command, "--bootstrap", address) for command in (["status"], ["tail", "events"], ["vips"])]
    for process in running:
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 1
        assert stderr.startswith(f"Error: cannot reach Kafka at {address} (") and stderr.count("\n") == 1, stderr
    assert time.monotonic() - started < 15


def test_masters_refuses_a_bad_ip_and_takes_names():
    from cli.main import _masters

    assert one_line_error("produce", "--mesos", "http://x", "--masters", "10.0.0.1:5050,300.1:5050") == (
        "Error: --masters '300.1:5050': '300.1' is not an IP address")
    assert one_line_error("produce", "--mesos", "http://x", "--masters", "fd00::zz:5050") == (
        "Error: --masters 'fd00::zz:5050': 'fd00::zz' is not an IP address")
    assert _masters("master-1.example:5050,10.0.0.1:5050,[fd00::1]:5050") == [
        "master-1.example:5050", "10.0.0.1:5050", "[fd00::1]:5050"]


def test_simulator_ports_in_use_are_named():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert one_line_error("simulate", "--mesos-listen", f"127.0.0.1:{port}") == (
            f"Error: the simulator's listen address (--mesos-listen) 127.0.0.1:{port} is in use (TCP): another process listens there")
        assert one_line_error("simulate", "--mesos-listen", "127.0.0.1:0", "--marathon-listen", f"127.0.0.1:{port}") == (
            f"Error: the simulator's listen address (--marathon-listen) 127.0.0.1:{port} is in use (TCP): another process listens there")


def test_one_shot_commands_with_an_unknown_namespace(kafka_bootstrap):
    namespace = f"nosuch{int(time.time() * 1000) % 10**8}"
    for command, topic in ((["status"], "status"), (["tail", "events"], "events"), (["vips"], "l4lb.vips")):
        started = time.monotonic()
        result = CliRunner().invoke(main, [*command, "--bootstrap", kafka_bootstrap, "--namespace", namespace])
        assert time.monotonic() - started < 15
        assert result.exit_code == 1
        assert result.stderr == (f"Error: namespace {namespace!r}: no topic {namespace}.{topic} at {kafka_bootstrap}; "
                                 "give the cluster's namespace with --namespace (or $WAYFINDER_NAMESPACE)\n")
