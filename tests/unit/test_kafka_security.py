"""The pure parts of the secured cluster: ACLs derived from the catalog, the role files, the
broker settings, and a --kafka-config file read again when it changes (a rotated password)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.kafka import acls, client_config, secure
from schemas.catalog import Catalog


def test_the_derived_acls_follow_the_catalog_and_name_only_this_namespace():
    catalog = Catalog("ns1")
    grants = acls.derive(catalog)
    assert {g.resource_name for g in grants if g.resource_type == "TOPIC"} == {t.name for t in catalog.topics}
    assert all(acls.owned_by(catalog, g.resource_name) for g in grants)
    assert not acls.owned_by(catalog, "ns10.dns.records")  # a namespace that only starts alike
    written = {(g.role, g.resource_name) for g in grants if g.operation == "WRITE" and g.resource_type == "TOPIC"}
    assert {name for role, name in written if role == "processor"} == {
        "ns1.l4lb.vips", "ns1.dns.records", "ns1.haproxy.services", "ns1.overlay.leases", "ns1.rejections", "ns1.status"}
    assert not [name for role, name in written if role in ("node", "audit")]
    assert ("processor", "GROUP", "ns1.processor", "READ") in {
        (g.role, g.resource_type, g.resource_name, g.operation) for g in grants}
    assert ("node", "TRANSACTIONAL_ID") not in {(g.role, g.resource_type) for g in grants}
    assert acls.table(grants)[0] == ("producer", "GROUP", "wayfinder-reader-*", "DESCRIBE")
    assert ("node", "TOPIC", "ns1.dns.records", "DESCRIBE,READ") in acls.table(grants)


def test_a_role_file_is_what_librdkafka_reads_and_the_brokers_refuse_anonymous_users():
    text = secure.role_properties("node", "pw", "h:1", Path("/s/ca.pem"))
    assert client_config.parse_properties(text) == {
        "bootstrap.servers": "h:1", "security.protocol": "SASL_SSL", "ssl.ca.location": "/s/ca.pem",
        "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "node", "sasl.password": "pw"}
    settings = secure.broker_settings(secure.BrokerSecrets(Path("/s"), "ks", "bp"), 9000)
    assert settings["listeners"] == "SASL_SSL://127.0.0.1:9000,CONTROLLER://127.0.0.1:9001"
    assert settings["listener.security.protocol.map"] == "CONTROLLER:SSL,SASL_SSL:SASL_SSL"
    assert settings["allow.everyone.if.no.acl.found"] == "false"
    assert settings["super.users"] == "User:broker;User:admin"
    assert settings["listener.name.controller.ssl.client.auth"] == "required"
    # Open sessions end unless re-authenticated: five minutes unless the directory says otherwise.
    assert settings["connections.max.reauth.ms"] == "300000"
    assert secure.broker_settings(secure.BrokerSecrets(Path("/s"), "ks", "bp"), 9000, 2.5)[
        "connections.max.reauth.ms"] == "2500"
    assert secure.scram_format_args({"b": "x", "a": "y"}) == [
        "--add-scram", "SCRAM-SHA-512=[name=a,password=y]", "--add-scram", "SCRAM-SHA-512=[name=b,password=x]"]


class _Client:
    """Stands in for a confluent-kafka client: records the credentials it is given."""

    def __init__(self) -> None:
        self.given: list[tuple[str, str]] = []

    def set_sasl_credentials(self, username: str, password: str) -> None:
        self.given.append((username, password))


def test_a_changed_kafka_config_file_is_taken_and_a_broken_one_is_not(tmp_path):
    path = tmp_path / "node.properties"
    path.write_text("security.protocol=SASL_SSL\nsasl.username=node\nsasl.password=one\n")
    producer, consumer, stand_in = _Client(), _Client(), object()
    try:
        client_config.install(client_config.load(path), source=path)
        client_config.track(producer)
        client_config.track(stand_in)  # no set_sasl_credentials: must not stop the others'
        assert client_config.installed_source() == str(path)
        assert not client_config.reload_if_changed()
        client_config.refresh(consumer)
        assert producer.given == consumer.given == []
        secure.write_secret(path, "security.protocol=SASL_SSL\nsasl.username=node\nsasl.password=two\n")
        assert client_config.reload_if_changed()
        assert client_config.passed_through()["sasl.password"] == "two"
        assert producer.given == [("node", "two")]  # a producer at once
        client_config.refresh(consumer)  # a consumer from its polling thread, once
        client_config.refresh(consumer)
        assert consumer.given == [("node", "two")]
        assert (os.stat(path).st_mode & 0o777) == 0o600
        secure.write_secret(path, "this is not a properties line\n")
        assert not client_config.reload_if_changed()
        assert client_config.passed_through()["sasl.password"] == "two"
    finally:
        for client in (producer, consumer, stand_in):
            client_config.forget(client)
        client_config.install({})


def test_a_kafka_config_with_a_password_that_others_may_read_is_named(tmp_path, caplog):
    path = tmp_path / "node.properties"
    path.write_text("sasl.username=node\nsasl.password=pw\n")
    path.chmod(0o644)
    client_config.load(path)
    assert [r.getMessage() for r in caplog.records] == [
        f"{path} holds sasl.password and other users may read it (mode 644): chmod 600 it"]
    caplog.clear()
    path.chmod(0o600)
    client_config.load(path)
    assert not caplog.records


def test_reauthentication_is_refused_for_a_plain_cluster_before_its_directory_is_made(tmp_path):
    from runtime.kafka import cluster

    with pytest.raises(cluster.KafkaClusterError, match="would be plain"):
        cluster.up(tmp_path / "kafka", reauth_after_s=5)
    assert not (tmp_path / "kafka" / "cluster.json").exists()  # so `up --secure` may still make it


def test_secrets_for_brokers_kafka_up_does_not_run(tmp_path):
    from click.testing import CliRunner

    from cli.main import main

    result = CliRunner().invoke(main, ["kafka", "secrets", "--dir", str(tmp_path), "--hosts", "kafka-1,kafka-2",
                                       "--bootstrap", "kafka-1:9092,kafka-2:9092", "--reauth-after", "60"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "secrets"
    settings = client_config.parse_properties((out / "broker-security.properties").read_text())
    assert settings["connections.max.reauth.ms"] == "60000"
    assert settings["allow.everyone.if.no.acl.found"] == "false"
    assert settings["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    users = sorted(line.split("name=")[1].split(",")[0] for line in (out / "scram-users.args").read_text().splitlines()
                   if line.startswith("SCRAM-SHA-512="))
    assert users == sorted(["broker", *secure.ROLES])
    node = client_config.parse_properties((out / "node.properties").read_text())
    assert node["bootstrap.servers"] == "kafka-1:9092,kafka-2:9092" and node["sasl.username"] == "node"
    for name in ("broker-security.properties", "scram-users.args", "node.properties", "ca.key"):
        assert (out / name).stat().st_mode & 0o777 == 0o600, name
