"""A real secured Kafka (`kafka up --secure`: TLS, SCRAM users, the authorizer) for the
security tests: one broker on 127.0.0.1:30096, started once per test session, or the running
secured cluster whose directory WAYFINDER_TEST_SECURE_DIR names (then nothing is started)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from runtime.kafka import client_config, cluster, secure
from schemas.catalog import Catalog

SECURE_BASE_PORT = 30096  # in this suite's range (tests/conftest.py), beside the plain broker's
# Every client re-authenticates this often here (5 min by default), so the tests see both a
# rotated-out password lose its open connection and every role's process re-authenticate
# with the passwords it re-reads, many times over.
REAUTH_AFTER_S = 4.0


@dataclass
class SecureKafka:
    dir: Path
    bootstrap: str

    def role_file(self, role: str) -> Path:
        return secure.role_file(self.dir, role)

    @property
    def reauth_after_s(self) -> float:
        """How long the brokers let a SASL session run before it must re-authenticate."""
        settings = client_config.parse_properties((self.dir / "broker-1" / "server.properties").read_text())
        return int(settings["connections.max.reauth.ms"]) / 1000

    def settings(self, role: str) -> dict[str, str]:
        """A role's client settings, bootstrap included, for confluent-kafka clients."""
        return {**secure.client_settings(self.dir, role), "bootstrap.servers": self.bootstrap}


@pytest.fixture(scope="session")
def secure_kafka(tmp_path_factory) -> SecureKafka:
    external = os.environ.get("WAYFINDER_TEST_SECURE_DIR")
    if external:
        yield SecureKafka(Path(external), cluster.bootstrap_of(Path(external)))
        return
    dir = tmp_path_factory.mktemp("kafka-secure")
    try:
        bootstrap = cluster.up(dir, brokers=1, base_port=SECURE_BASE_PORT, timeout=90.0, secured=True,
                               reauth_after_s=REAUTH_AFTER_S)
        yield SecureKafka(dir, bootstrap)
    finally:
        cluster.down(dir)


@pytest.fixture
def namespace_with_acls(secure_kafka, request) -> Catalog:
    """A namespace of its own for one test, with the derived ACLs applied to it."""
    from runtime.kafka import acls
    from runtime.kafka.security_admin import apply_acls

    catalog = Catalog(f"sec{abs(hash(request.node.nodeid)) % 10**8}")
    apply_acls(secure_kafka.bootstrap, secure_kafka.settings("admin"), catalog, acls.derive(catalog))
    yield catalog
    client_config.install({})  # a test that took a role's settings must not leave them behind
