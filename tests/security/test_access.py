"""Every role against every topic of a real secured broker with the derived ACLs applied: what
the catalog allows succeeds, and everything else is refused with an authorization error.
Clients without credentials, with a wrong password, or trusting another CA never get in."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from runtime.kafka import certs, secure
from runtime.kafka.client_config import unjoined_group_id

pytestmark = pytest.mark.kafka

SOURCES = {"agents", "frameworks", "tasks", "cluster", "apps", "app-tasks"}
DERIVED = {"vips", "dns", "haproxy", "overlay"}
EVERY = SOURCES | DERIVED | {"events", "rejections", "status"}

# What each role may do, by topic alias: written out by hand from the issue (producers write
# only the sources, events and rejections, plus their readiness marks; the processor reads the
# sources and writes only the derived topics and rejections, plus its marks; nodes read only
# the derived topics they apply, plus the marks; audit reads everything and writes nothing).
# A writer of a table reads it too: it rebuilds its state from it on start.
MAY_WRITE = {
    "producer": SOURCES | {"events", "rejections", "status"},
    "processor": DERIVED | {"rejections", "status"},
    "node": set(),
    "audit": set(),
    "admin": EVERY,
}
MAY_READ = {
    "producer": SOURCES | {"status"},
    "processor": SOURCES | DERIVED | {"status"},
    "node": DERIVED | {"status"},
    "audit": EVERY,
    "admin": EVERY,
}
DEADLINE_S = 30.0


def _create_every_topic(settings: dict, catalog) -> None:
    admin = AdminClient(settings)
    futures = admin.create_topics([NewTopic(t.name, 1, 1) for t in catalog.topics], operation_timeout=20)
    for future in futures.values():
        future.result(20)
    producer = Producer(settings)
    for topic in catalog.topics:
        producer.produce(topic.name, key=b"seed", value=b"seed", partition=0)
    assert producer.flush(20) == 0


def _try_writes(settings: dict, catalog) -> dict[str, int]:
    """Alias -> error code of one record written to each topic (0 for delivered)."""
    outcome: dict[str, int] = {}
    alias_of = {t.name: t.alias for t in catalog.topics}
    producer = Producer({**settings, "message.timeout.ms": 15000})

    def report(error, message) -> None:
        outcome[alias_of[message.topic()]] = error.code() if error else 0

    for topic in catalog.topics:
        producer.produce(topic.name, key=b"probe", value=b"probe", partition=0, on_delivery=report)
    producer.flush(DEADLINE_S)
    return outcome


def _try_reads(settings: dict, catalog) -> dict[str, int]:
    """Alias -> error code of reading each topic from its start (0 when its seed record came)."""
    consumer = Consumer({**settings, "group.id": unjoined_group_id(), "enable.auto.commit": False})
    outcome: dict[str, int] = {}
    # A topic the role may not even DESCRIBE is refused in its metadata; librdkafka then never
    # fetches it, and says nothing more.
    for topic in catalog.topics:
        error = consumer.list_topics(topic.name, timeout=10).topics[topic.name].error
        if error is not None:
            outcome[topic.alias] = error.code()
    alias_of = {t.name: t.alias for t in catalog.topics if t.alias not in outcome}
    consumer.assign([TopicPartition(name, 0, OFFSET_BEGINNING) for name in alias_of])
    deadline = time.monotonic() + DEADLINE_S
    try:
        while len(outcome) < len(catalog.topics) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.topic() not in alias_of:
                continue
            if message.error() is None:
                outcome.setdefault(alias_of[message.topic()], 0)
            elif message.error().code() != KafkaError._PARTITION_EOF:
                outcome.setdefault(alias_of[message.topic()], message.error().code())
    finally:
        consumer.close()
    return outcome


def test_each_role_may_use_exactly_the_topics_the_catalog_gives_it(secure_kafka, namespace_with_acls):
    catalog = namespace_with_acls
    _create_every_topic(secure_kafka.settings("admin"), catalog)
    denied_write = KafkaError.TOPIC_AUTHORIZATION_FAILED
    for role in secure.ROLES:
        settings = secure_kafka.settings(role)
        writes = _try_writes(settings, catalog)
        assert writes == {alias: 0 if alias in MAY_WRITE[role] else denied_write for alias in EVERY}, role
        reads = _try_reads(settings, catalog)
        assert reads == {alias: 0 if alias in MAY_READ[role] else denied_write for alias in EVERY}, role
    # The hijack this issue is about, stated once more on its own.
    node = _try_writes(secure_kafka.settings("node"), catalog)
    assert node["dns"] == node["vips"] == denied_write


def test_only_the_processor_may_use_its_transactional_id_and_group(secure_kafka, namespace_with_acls):
    catalog = namespace_with_acls
    for role, allowed in (("processor", True), ("node", False), ("producer", False)):
        producer = Producer({**secure_kafka.settings(role), "transactional.id": catalog.processor_transactional_id})
        if allowed:
            # Every broker learns a new ACL from the metadata log, moments after the controller
            # took it: on three brokers the coordinator may not know it yet (bounded retry).
            deadline = time.monotonic() + 15
            while True:
                try:
                    producer.init_transactions(20)
                    break
                except KafkaException as error:
                    if error.args[0].code() != KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED or (
                            time.monotonic() > deadline):
                        raise
                    time.sleep(0.5)
                    producer = Producer({**secure_kafka.settings(role),
                                         "transactional.id": catalog.processor_transactional_id})
        else:
            with pytest.raises(KafkaException) as refused:
                producer.init_transactions(20)
            assert refused.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, role

    errors: list[int] = []
    consumer = Consumer({**secure_kafka.settings("node"), "group.id": catalog.processor_group,
                         "error_cb": lambda error: errors.append(error.code())})
    consumer.subscribe([catalog.topic("status").name])
    deadline = time.monotonic() + DEADLINE_S
    while KafkaError.GROUP_AUTHORIZATION_FAILED not in errors and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is not None:
            errors.append(message.error().code())
    consumer.close()
    assert KafkaError.GROUP_AUTHORIZATION_FAILED in errors


def _connect_errors(settings: dict, timeout: float = 10.0) -> list[KafkaError]:
    """The errors a client reports while it tries to read metadata, until the first comes or
    for `timeout`. Reading the metadata fails the test: the client got in."""
    errors: list[KafkaError] = []
    admin = AdminClient({**settings, "error_cb": errors.append, "log_level": 0})
    deadline = time.monotonic() + timeout
    while not errors and time.monotonic() < deadline:
        with pytest.raises(KafkaException):
            admin.list_topics(timeout=0.5)
        admin.poll(0)
    return errors


def test_no_credentials_a_wrong_password_or_another_ca_cannot_connect(secure_kafka, tmp_path):
    node = secure_kafka.settings("node")
    # Neither gets metadata in 10 s (_connect_errors fails the test if one does). A single
    # broker reports itself down at once; of three, librdkafka may say nothing meanwhile.
    plain = {"bootstrap.servers": secure_kafka.bootstrap}
    _connect_errors(plain)  # plaintext at a TLS listener
    _connect_errors({**plain, "security.protocol": "SSL", "ssl.ca.location": node["ssl.ca.location"]})

    wrong_password = _connect_errors({**node, "sasl.password": "not-the-password"})
    assert any(e.code() == KafkaError._AUTHENTICATION for e in wrong_password), wrong_password

    other_ca = tmp_path / "other-ca.pem"
    certs.make_ca(other_ca, tmp_path / "other-ca.key")
    untrusted = _connect_errors({**node, "ssl.ca.location": str(other_ca)})
    assert any(e.code() == KafkaError._SSL and "certificate verify failed" in e.str() for e in untrusted), untrusted
