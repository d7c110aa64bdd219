"""`--kafka-config FILE`: the properties parser, what it refuses, and that its settings reach
every Kafka client the code makes (recorded instead of connecting)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli.main import main
from runtime.kafka import client_config
from runtime.kafka.client_config import KafkaConfigError, check_passable, check_with_librdkafka, parse_properties


@pytest.fixture(autouse=True)
def no_settings_left_over():
    yield
    client_config.install({})


def test_comments_blank_lines_and_whitespace_are_skipped():
    text = "# TLS to the brokers\n\n   security.protocol = SSL  \n\t# another\nssl.ca.location=/etc/ca.pem\n"
    assert parse_properties(text) == {"security.protocol": "SSL", "ssl.ca.location": "/etc/ca.pem"}


def test_a_value_keeps_every_equals_sign_after_the_first():
    line = 'sasl.oauthbearer.config=principal=admin scope="a=b"'
    assert parse_properties(line) == {"sasl.oauthbearer.config": 'principal=admin scope="a=b"'}


def test_an_empty_value_is_kept_empty():
    assert parse_properties("ssl.endpoint.identification.algorithm=") == {
        "ssl.endpoint.identification.algorithm": ""}


def test_a_key_given_twice_names_both_lines():
    with pytest.raises(KafkaConfigError, match=r"^f.properties:4: client.id is already set on line 2$"):
        parse_properties("# x\nclient.id=a\n\nclient.id=b\n", "f.properties")


@pytest.mark.parametrize("line", ["security.protocol", "=SSL", "  = x"])
def test_a_line_without_key_and_equals_names_its_number(line):
    with pytest.raises(KafkaConfigError, match=r"^f:3: expected key=value, got "):
        parse_properties(f"a=1\n\n{line}\n", "f")


def test_settings_wayfinder_relies_on_are_refused_with_the_reason():
    with pytest.raises(KafkaConfigError, match="enable.idempotence cannot be set here: writers must not lose"):
        check_passable({"client.id": "x", "enable.idempotence": "false"})
    with pytest.raises(KafkaConfigError, match="error_cb is a callback"):
        check_passable({"error_cb": "print"})


def test_librdkafka_itself_refuses_an_unknown_property_and_a_bogus_sasl_mechanism():
    with pytest.raises(KafkaConfigError, match=r'^f: librdkafka refused it: No such configuration property: "no.such"$'):
        check_with_librdkafka({"no.such": "1"}, "f")
    with pytest.raises(KafkaConfigError, match="Unsupported SASL mechanism: BOGUS"):
        check_with_librdkafka({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "BOGUS"}, "f")
    check_with_librdkafka({"bootstrap.servers": "nowhere:1", "client.id": "ok", "socket.keepalive.enable": "true"})


def test_the_cli_refuses_a_bad_file_in_one_line_before_doing_anything(tmp_path):
    bad = tmp_path / "kafka.properties"
    bad.write_text("security.protocol=SASL_PLAINTEXT\nsasl.mechanisms=BOGUS\n")
    result = CliRunner().invoke(main, ["tail", "events", "--kafka-config", str(bad)])
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert errors == [f"Error: Invalid value for '--kafka-config': {bad}: librdkafka refused it: "
                      "Failed to create producer: Unsupported SASL mechanism: BOGUS"]
    assert "Traceback" not in result.output


def test_the_files_bootstrap_servers_is_the_bootstrap_unless_given_on_the_command_line(tmp_path, monkeypatch):
    from runtime.settings import resolve_bootstrap

    monkeypatch.setenv("WAYFINDER_BOOTSTRAP", "from-env:9092")
    client_config.install({"bootstrap.servers": "from-file:9092", "client.id": "x"})
    assert resolve_bootstrap(None) == "from-file:9092"
    assert resolve_bootstrap("from-flag:9092") == "from-flag:9092"
    assert "bootstrap.servers" not in client_config.passed_through()
    client_config.install({})
    assert resolve_bootstrap(None) == "from-env:9092"


class _Recorder:
    """Stands in for a confluent-kafka client: keeps its settings, connects nowhere."""

    made: list[dict] = []

    def __init__(self, settings: dict):
        _Recorder.made.append(settings)

    def poll(self, timeout=None):
        return None

    def flush(self, timeout=None):
        return 0

    def close(self):
        pass

    def list_topics(self, *args, **kwargs):
        return type("Metadata", (), {"topics": {}, "brokers": {}})()


def test_every_client_the_code_makes_gets_the_files_settings_over_its_own_tuning(monkeypatch):
    from producers import marks
    from runtime.kafka import election, follower, reach, reader, topics, transactions, writer

    for module, name in ((writer, "Producer"), (transactions, "Producer"), (reader, "Consumer"),
                         (follower, "Consumer"), (election, "Consumer"), (marks, "Consumer"),
                         (topics, "AdminClient"), (reach, "AdminClient")):
        monkeypatch.setattr(module, name, _Recorder)
    _Recorder.made = []
    client_config.install({"client.id": "audited-client", "security.protocol": "SSL", "linger.ms": "50"})

    sink = writer.KafkaSink("k:9092")
    sink.close(timeout=0.1)
    transactions.TransactionalWriter("k:9092", "wayfinder-processor-1")
    reader._consumer("k:9092")
    follower.TableFollower("k:9092", "t")
    election.Election("k:9092", "g", "t", 6000)
    marks.EndOffsets("k:9092")
    topics.partition_counts("k:9092")
    reach.require_kafka("k:9092")

    assert len(_Recorder.made) == 8
    for settings in _Recorder.made:
        assert settings["bootstrap.servers"] == "k:9092"
        assert settings["client.id"] == "audited-client" and settings["security.protocol"] == "SSL"
    assert _Recorder.made[0]["linger.ms"] == "50"  # over the writer's own 2 ms
    assert _Recorder.made[0]["enable.idempotence"] is True  # what Wayfinder relies on stays
    assert _Recorder.made[1]["transactional.id"] == "wayfinder-processor-1"
