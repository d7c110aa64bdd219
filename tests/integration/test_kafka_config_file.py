"""`--kafka-config` against a real broker: the file alone says where Kafka is, and its
settings reach the clients (a client.id the broker itself reports)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from runtime.kafka import client_config
from runtime.kafka.election import Election
from runtime.kafka.topics import ensure_topics
from tests.integration.pipeline import new_catalog

pytestmark = pytest.mark.kafka

WAYFINDER = str(Path(sys.executable).with_name("wayfinder"))


def test_topics_finds_kafka_from_the_file_alone(kafka_bootstrap, tmp_path):
    catalog = new_catalog()
    ensure_topics(kafka_bootstrap, catalog)
    config = tmp_path / "kafka.properties"
    config.write_text(f"# the dev broker\nbootstrap.servers = {kafka_bootstrap}\nclient.id=wf-topics-test\n")
    env = {k: v for k, v in os.environ.items() if k != "WAYFINDER_BOOTSTRAP"}
    done = subprocess.run([WAYFINDER, "topics", "--namespace", catalog.namespace, "--kafka-config", str(config)],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == len(catalog.topics)
    for topic, line in zip(catalog.topics, lines):
        assert line.startswith(topic.alias) and line.endswith(f"partitions={topic.partitions}"), line


def test_a_client_id_from_the_file_is_what_the_broker_sees(kafka_bootstrap):
    topic, group = f"wf-kc-{uuid.uuid4().hex[:8]}", f"wf-kc-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    client_config.install({"client.id": "wf-audited-by-file"})
    election = Election(kafka_bootstrap, group, topic, 6000)
    try:
        election.start()
        assert election.leading.wait(30)
        deadline = time.monotonic() + 30
        while True:  # bounded: the group's description catches up within a rebalance
            described = admin.describe_consumer_groups([group])[group].result(10)
            if described.members or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert [member.client_id for member in described.members] == ["wf-audited-by-file"]
    finally:
        client_config.install({})
        election.close()
        admin.delete_topics([topic])
