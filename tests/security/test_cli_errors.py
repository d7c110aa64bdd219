"""A one-shot command pointed at a secured Kafka the wrong way says what is wrong in one line,
at once, instead of waiting out its timeout as if the broker were down."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from runtime.kafka import secure
from tests.chaos.stack import WAYFINDER

pytestmark = pytest.mark.kafka


def _status(*args: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    done = subprocess.run([WAYFINDER, "status", *args], capture_output=True, text=True, timeout=60)
    return done, time.monotonic() - started


def _node_with(node: str, key: str, value, tmp_path) -> str:
    """The node's client config with one setting changed, written to a file of its own."""
    path = tmp_path / f"node-with-{key}.properties"
    # 0600 as a secret should be: a readable one adds a warning line to the error's.
    secure.write_secret(path, "".join(f"{key}={value}\n" if line.startswith(f"{key}=") else line
                                      for line in node.splitlines(keepends=True)))
    return str(path)


def test_plaintext_a_wrong_password_and_another_ca_each_get_their_own_line(secure_kafka, tmp_path):
    plain, took = _status("--bootstrap", secure_kafka.bootstrap)
    assert plain.returncode == 1
    assert plain.stderr.strip() == (
        f"Error: Kafka at {secure_kafka.bootstrap} refused this client: the listener hangs up on plaintext: "
        "it speaks TLS (a secured Kafka needs --kafka-config with security.protocol=SASL_SSL and the role's "
        "credentials)")
    assert took < 8

    node = secure_kafka.role_file("node").read_text()
    refused, took = _status("--kafka-config", _node_with(node, "sasl.password", "guess", tmp_path))
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"Error: Kafka at {secure_kafka.bootstrap} refused this client: its user or password is refused "
        "(sasl.username / sasl.password in --kafka-config; a rotated password is in the role's new file)")
    assert took < 8

    from runtime.kafka import certs
    certs.make_ca(tmp_path / "other-ca.pem", tmp_path / "other-ca.key")
    untrusted, took = _status("--kafka-config", _node_with(node, "ssl.ca.location", tmp_path / "other-ca.pem", tmp_path))
    assert untrusted.returncode == 1
    assert untrusted.stderr.strip() == (
        f"Error: Kafka at {secure_kafka.bootstrap} refused this client: its ssl.ca.location does not trust "
        "the broker's certificate")
    assert took < 8


def test_a_producer_without_its_acls_says_so_and_goes_on_once_they_are_applied(secure_kafka, tmp_path):
    from confluent_kafka.admin import AdminClient

    from runtime.kafka import acls
    from runtime.kafka.security_admin import apply_acls
    from runtime.ports import free_port
    from schemas.catalog import Catalog
    from tests.operations.processes import start, stop_within_bound, wait_for_line

    catalog = Catalog(f"noacl{free_port()}")
    producer = start("produce", "--kafka-config", str(secure_kafka.role_file("producer")), "--namespace",
                     catalog.namespace, "--mesos", f"http://127.0.0.1:{free_port()}")
    try:
        wait_for_line(producer, "Kafka refuses user 'producer' topics it writes "
                                f"({catalog.namespace}.mesos.agents, {catalog.namespace}.mesos.frameworks and 7 more): "
                                "apply the ACLs (`wayfinder kafka acls --apply`); retrying", timeout=20)
        apply_acls(secure_kafka.bootstrap, secure_kafka.settings("admin"), catalog, acls.derive(catalog))
        admin = AdminClient(secure_kafka.settings("admin"))
        deadline = time.monotonic() + 30
        while catalog.topic("tasks").name not in admin.list_topics(timeout=5).topics:
            assert time.monotonic() < deadline, "the producer did not create its topics once allowed"
            time.sleep(0.5)
        assert producer.poll() is None
    finally:
        stop_within_bound(producer, signal.SIGTERM)
