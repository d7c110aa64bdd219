"""Common mistakes get one line ("Error: ..."), exit 1, no traceback; --version; one-shot
commands with an unreachable Kafka fail fast naming the address."""

from __future__ import annotations

import socket
import time

from click.testing import CliRunner

from cli.main import main
from runtime.ports import free_port

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
    for command in (["status"], ["tail", "events"], ["vips"]):
        started = time.monotonic()
        result = CliRunner().invoke(main, [*command, "--bootstrap", address])
        assert time.monotonic() - started < 15
        assert result.exit_code == 1
        assert result.stderr.startswith(f"Error: cannot reach Kafka at {address} (") and result.stderr.count("\n") == 1
