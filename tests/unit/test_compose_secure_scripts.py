"""compose/secure/'s scripts, run without Docker or Kafka: the brokers' entrypoint (its
server.properties, its storage format with the SCRAM users, its health check) and the secrets
job that hands each service only its share."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

COMPOSE_DIR = Path(__file__).resolve().parents[2] / "compose"
SECURE_DIR = COMPOSE_DIR / "secure"
# Not what `wayfinder kafka secrets` makes (letters, digits, - and _), but what must survive
# the shell all the same: spaces, a glob, quotes.
AWKWARD_PASSWORD = "two  words * and 'quotes'"


def _broker_secrets(tmp_path: Path) -> Path:
    from runtime.kafka.secure import BrokerSecrets, scram_format_args, security_settings

    secrets = tmp_path / "secrets"
    secrets.mkdir()
    settings = security_settings(BrokerSecrets(Path("/secrets"), "keystore-pw", "broker-pw"))
    (secrets / "broker-security.properties").write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    (secrets / "scram-users.args").write_text(
        "".join(f"{arg}\n" for arg in scram_format_args({"broker": "broker-pw", "producer": AWKWARD_PASSWORD})))
    return secrets


def _fake_kafka(tmp_path: Path) -> Path:
    """A KAFKA_HOME whose tools record their arguments, one per line, in TOOL.args."""
    home = tmp_path / "kafka"
    (home / "bin").mkdir(parents=True, exist_ok=True)
    for tool in ("kafka-storage.sh", "kafka-server-start.sh", "kafka-broker-api-versions.sh"):
        script = home / "bin" / tool
        script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{tmp_path}/{tool}.args"\n'
                          f'echo "$KAFKA_HEAP_OPTS" > "{tmp_path}/{tool}.heap"\n')
        script.chmod(0o755)
    return home


def _run_broker_script(tmp_path: Path, mode: str, **environment: str) -> subprocess.CompletedProcess:
    if not shutil.which("bash"):
        pytest.skip("no bash")
    env = {"PATH": os.environ.get("PATH", ""), "KAFKA_HOME": str(_fake_kafka(tmp_path)),
           "SECRETS": str(tmp_path / "secrets"), "CONFIG_DIR": str(tmp_path / "config"),
           "CLUSTER_ID": "d2F5ZmluZGVyLXNlY3VyZQ", "KAFKA_NODE_ID": "2", "KAFKA_PROCESS_ROLES": "broker,controller",
           "KAFKA_LISTENERS": "SASL_SSL://:9092,CONTROLLER://:9093",
           "KAFKA_ADVERTISED_LISTENERS": "SASL_SSL://kafka-2:9092", "KAFKA_HEAP_OPTS": "-Xmx512m",
           "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "2", **environment}
    return subprocess.run(["bash", str(SECURE_DIR / "broker.sh"), mode], env=env, capture_output=True,
                          text=True, timeout=60)


def _properties(path: Path) -> dict[str, str]:
    from runtime.kafka.client_config import parse_properties

    return parse_properties(path.read_text(), str(path))


def test_broker_script_writes_the_environment_then_the_security_settings(tmp_path):
    secrets = _broker_secrets(tmp_path)
    result = _run_broker_script(tmp_path, "config")
    assert result.returncode == 0, result.stderr
    written = (tmp_path / "config" / "server.properties").read_text()
    settings = _properties(tmp_path / "config" / "server.properties")  # refuses a key given twice
    assert settings["node.id"] == "2"
    assert settings["process.roles"] == "broker,controller"
    assert settings["listeners"] == "SASL_SSL://:9092,CONTROLLER://:9093"
    assert settings["advertised.listeners"] == "SASL_SSL://kafka-2:9092"
    assert settings["transaction.state.log.min.isr"] == "2"
    assert "heap" not in written.lower() and "kafka.home" not in written  # the script's, not Kafka's
    # The security settings as they are, after everything else.
    security = (secrets / "broker-security.properties").read_text()
    assert written.endswith(security)
    assert settings["listener.security.protocol.map"] == "CONTROLLER:SSL,SASL_SSL:SASL_SSL"
    assert settings["allow.everyone.if.no.acl.found"] == "false"
    assert settings["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    # Both files hold secrets.
    for name in ("server.properties", "client.properties"):
        assert (tmp_path / "config" / name).stat().st_mode & 0o077 == 0, name
    # The health check's client: SASL_SSL as the brokers' own user, trusting only the CA.
    client = _properties(tmp_path / "config" / "client.properties")
    assert client == {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.jaas.config": 'org.apache.kafka.common.security.scram.ScramLoginModule required '
                            'username="broker" password="broker-pw";',
        "ssl.truststore.type": "PEM", "ssl.truststore.location": "/secrets/ca.pem"}


def test_broker_script_formats_with_the_scram_users_unsplit_and_starts(tmp_path):
    _broker_secrets(tmp_path)
    result = _run_broker_script(tmp_path, "start")
    assert result.returncode == 0, result.stderr
    config = str(tmp_path / "config" / "server.properties")
    assert (tmp_path / "kafka-storage.sh.args").read_text().splitlines() == [
        "format", "--ignore-formatted", "--cluster-id", "d2F5ZmluZGVyLXNlY3VyZQ", "--config", config,
        "--add-scram", "SCRAM-SHA-512=[name=broker,password=broker-pw]",
        "--add-scram", f"SCRAM-SHA-512=[name=producer,password={AWKWARD_PASSWORD}]"]
    assert (tmp_path / "kafka-server-start.sh.args").read_text().splitlines() == [config]
    assert (tmp_path / "kafka-server-start.sh.heap").read_text().strip() == "-Xmx512m"


def test_broker_script_health_asks_the_advertised_listener_with_a_small_heap(tmp_path):
    _broker_secrets(tmp_path)
    assert _run_broker_script(tmp_path, "health").returncode != 0  # not started: no client config yet
    assert _run_broker_script(tmp_path, "config").returncode == 0
    result = _run_broker_script(tmp_path, "health")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "kafka-broker-api-versions.sh.args").read_text().splitlines() == [
        "--bootstrap-server", "kafka-2:9092", "--command-config", str(tmp_path / "config" / "client.properties")]
    assert (tmp_path / "kafka-broker-api-versions.sh.heap").read_text().strip() == "-Xmx128m"


@pytest.mark.parametrize("environment, refusal", [
    ({"KAFKA_SUPER_USERS": "User:eve"}, "super.users"),
    ({"KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND": "true"}, "allow.everyone.if.no.acl.found"),
    ({"KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://kafka-2:9092"}, "one SASL_SSL listener"),
    ({"KAFKA_ADVERTISED_LISTENERS": "SASL_SSL://kafka-2:9092,PLAINTEXT://kafka-2:9094"}, "one SASL_SSL listener"),
])
def test_broker_script_refuses_to_weaken_the_security_settings(tmp_path, environment, refusal):
    _broker_secrets(tmp_path)
    result = _run_broker_script(tmp_path, "start", **environment)
    assert result.returncode != 0 and refusal in result.stderr
    assert not (tmp_path / "kafka-server-start.sh.args").exists()


def test_broker_script_needs_the_secrets(tmp_path):
    result = _run_broker_script(tmp_path, "start")
    assert result.returncode != 0 and "has the secrets service run?" in result.stderr
    assert not (tmp_path / "kafka-server-start.sh.args").exists()


def test_secrets_script_hands_each_service_only_its_share(tmp_path):
    wayfinder = Path(sys.executable).parent / "wayfinder"
    if not wayfinder.exists() or not shutil.which("openssl"):
        pytest.skip("needs the wayfinder command and openssl")
    # As root (in the container) it hands the files to the services' users; elsewhere, to itself.
    kafka_uid, wayfinder_uid = (1000, 10001) if os.geteuid() == 0 else (os.geteuid(), os.geteuid())
    env = {"PATH": os.environ.get("PATH", ""), "VAULT": str(tmp_path / "vault"), "OUT": str(tmp_path / "out"),
           "WAYFINDER": str(wayfinder), "KAFKA_UID": str(kafka_uid), "WAYFINDER_UID": str(wayfinder_uid)}

    def run():
        result = subprocess.run(["sh", str(SECURE_DIR / "secrets.sh")], env=env, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, result.stderr

    run()
    out = tmp_path / "out"
    shares = {share.name: sorted(f.name for f in share.iterdir()) for share in out.iterdir()}
    assert shares == {
        "broker": ["broker-security.properties", "broker.p12", "ca.pem", "scram-users.args"],
        "producer": ["ca.pem", "producer.properties"], "processor": ["ca.pem", "processor.properties"],
        "node": ["ca.pem", "node.properties"], "admin": ["admin.properties", "ca.pem"]}
    for share, files in shares.items():
        owner = kafka_uid if share == "broker" else wayfinder_uid
        assert (out / share).stat().st_uid == owner and (out / share).stat().st_mode & 0o777 == 0o700
        for name in files:
            info = (out / share / name).stat()
            assert info.st_uid == owner, (share, name)
            assert info.st_mode & 0o777 == (0o644 if name == "ca.pem" else 0o600), (share, name)
    for role in ("producer", "processor", "node", "admin"):
        settings = _properties(out / role / f"{role}.properties")
        assert settings["sasl.username"] == role
        assert settings["ssl.ca.location"] == "/secrets/ca.pem"  # where the service mounts its share
        assert settings["bootstrap.servers"] == "kafka-1:9092,kafka-2:9092,kafka-3:9092"
        assert settings["security.protocol"] == "SASL_SSL"
    assert "ssl.keystore.location=/secrets/broker.p12" in (out / "broker" / "broker-security.properties").read_text()
    # Again: the same passwords, and unchanged files are left in place (a running process
    # watching its --kafka-config sees no change).
    before = {path: (path.stat().st_ino, path.read_bytes()) for path in out.rglob("*") if path.is_file()}
    run()
    assert {path: (path.stat().st_ino, path.read_bytes()) for path in out.rglob("*") if path.is_file()} == before
