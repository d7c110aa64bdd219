"""The whole pipeline (simulator -> producer -> processor -> node) as processes on a secured
broker, each with its own role's credentials and nothing more, and a password rotation of
every role while it runs: the old passwords are refused from then on, a connection opened
with one is closed at its next re-authentication, and the running processes go on converging
with the new ones, through their re-authentications and after the broker drops every connection."""

from __future__ import annotations

import subprocess
import time

import dns.message
import dns.query
import dns.rcode
import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from runtime.kafka import cluster
from tests.chaos.stack import WAYFINDER, Stack
from tests.scenarios.mesos_fixtures import FIXTURES
from tests.security.test_access import _connect_errors

pytestmark = pytest.mark.kafka

STATE = FIXTURES / "mesos-state" / "state1.json"
ROTATED = ("producer", "processor", "node", "admin")


def _answer(stack: Stack, name: str, timeout: float = 60.0) -> list[str]:
    """The node's A records for `name`, once it has some (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reply = dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=stack.dns_port, timeout=1)
            if reply.rcode() == dns.rcode.NOERROR and reply.answer:
                return sorted(item.address for rrset in reply.answer for item in rrset)
        except (OSError, dns.exception.Timeout):
            pass
        time.sleep(0.2)
    raise AssertionError(f"no answer for {name} within {timeout:.0f} s\n{stack.logs()}")


def _await_refusal(client: AdminClient, errors: list[KafkaError], timeout: float) -> None:
    """Until `client` reports an authentication failure (bounded); it keeps asking for metadata,
    which needs its connection."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(e.code() == KafkaError._AUTHENTICATION for e in errors):
            return
        try:
            client.list_topics(timeout=0.5)
        except KafkaException:
            pass
        client.poll(0)
    raise AssertionError(f"a connection made with a rotated-out password still worked after {timeout:.0f} s: {errors}")


def _wayfinder(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([WAYFINDER, *args], capture_output=True, text=True, timeout=60)


def _launch(stack: Stack, app_id: str) -> None:
    stack.control("POST", "/sim/apps", {"id": app_id, "instances": 1, "cmd": "sleep 1000",
                                        "portDefinitions": [{"port": 0}]})


def test_the_pipeline_runs_on_role_credentials_and_survives_a_rotation(secure_kafka, namespace_with_acls, tmp_path):
    configs = {role: secure_kafka.role_file(role) for role in ("producer", "processor", "node")}
    stack = Stack(secure_kafka.bootstrap, tmp_path, STATE, processors=1, catalog=namespace_with_acls,
                  role_configs=configs)
    try:
        stack.start()
        stack.await_simulator()
        _launch(stack, "/before-rotation")
        first = _answer(stack, "before-rotation.marathon.mesos.")
        assert len(first) == 1

        # The one-shot commands, as an auditor: the same options, the audit role's file.
        audit = ["--kafka-config", str(secure_kafka.role_file("audit")), "--namespace", stack.catalog.namespace]
        status = _wayfinder("status", *audit)
        assert status.returncode == 0, status.stderr
        assert "producer/mesos" in status.stdout and "processor" in status.stdout
        events = _wayfinder("tail", "events", *audit, "--from-beginning", "--json", "--timeout", "5",
                            "--filter", "fields.app_id=/before-rotation", "--max", "1")
        assert events.returncode == 0, events.stderr
        assert '"/before-rotation"' in events.stdout
        # A node may not even read the history: refused in one line, not a hang.
        refused = _wayfinder("tail", "events", "--kafka-config", str(configs["node"]),
                             "--namespace", stack.catalog.namespace, "--timeout", "5")
        assert refused.returncode == 1
        assert "user 'node' may not read it" in refused.stderr

        old = {role: secure_kafka.settings(role) for role in ROTATED}
        # Someone who got in with the node's password and keeps it: connected before the rotation.
        holder_errors: list[KafkaError] = []
        holder = AdminClient({**old["node"], "error_cb": holder_errors.append, "log_level": 0})
        assert stack.catalog.topic("dns").name in holder.list_topics(timeout=10).topics
        for role in ROTATED:
            done = _wayfinder("kafka", "rotate", role, "--dir", str(secure_kafka.dir))
            assert done.returncode == 0, done.stderr
            assert f"rotated {role}'s password" in done.stderr
            assert secure_kafka.settings(role)["sasl.password"] != old[role]["sasl.password"]
            assert (secure_kafka.role_file(role).stat().st_mode & 0o777) == 0o600
        for role in ROTATED:
            errors = _connect_errors(old[role])
            assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), (role, errors)
        # Its open connection does not outlive the next re-authentication, which the old
        # password fails; meanwhile the running processes re-authenticate with their new ones.
        _await_refusal(holder, holder_errors, secure_kafka.reauth_after_s + 10)

        # Every open connection goes: a crash and restart of the broker. The processes were not
        # restarted; they reconnect with the passwords they read again from their files.
        cluster.kill_broker(secure_kafka.dir, 1)
        cluster.start_broker(secure_kafka.dir, 1)
        _launch(stack, "/after-rotation")
        second = _answer(stack, "after-rotation.marathon.mesos.", timeout=90)
        assert len(second) == 1
        assert {name: process.starts for name, process in stack.processes.items()} == dict.fromkeys(stack.processes, 1)
        assert all(process.pid is not None for process in stack.processes.values()), stack.logs()
    finally:
        stack.close()
