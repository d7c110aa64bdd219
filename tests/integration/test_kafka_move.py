"""A local cluster directory moves to another base port while none of its brokers runs, keeping
its data; a start that failed on a busy port is retried on another one in the same directory."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from runtime.kafka import cluster
from runtime.kafka.node import bindable

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parents[2]
# In the suite's own range (conftest.py) but apart from its clusters', so this runs beside the
# session's cluster; below the kernel's ephemeral range, so no client socket can take one of
# them (in that range a self-connect once held a port for 60 s: node.await_ports).
FIRST_BASE, SECOND_BASE, BUSY_BASE = 30100, 30130, 30160
START_TIMEOUT_S = 90.0


def _free_base(start: int) -> int:
    """The first even base port from `start` whose client and controller ports are both free."""
    for base in range(start, start + 20, 2):  # never into the next range, nor 30192's
        if bindable(base) and bindable(base + 1):
            return base
    raise AssertionError(f"no free port pair in {start}-{start + 80}")


def _write(bootstrap: str, topic: str, value: bytes) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)], operation_timeout=30)[topic].result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    producer.produce(topic, value=value)
    assert producer.flush(60) == 0, "record still queued after 60 s"


def _read_one(bootstrap: str, topic: str, timeout: float = 60.0) -> bytes:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                return msg.value()
    finally:
        consumer.close()
    raise AssertionError(f"no record in {topic} within {timeout} s")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.kafka", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=150)


def test_up_on_another_base_port_moves_the_stopped_cluster_and_keeps_its_topics(tmp_path):
    first, second = _free_base(FIRST_BASE), _free_base(SECOND_BASE)
    kafka_dir = tmp_path / "kafka"
    topic = f"moved-{uuid.uuid4().hex[:8]}"
    try:
        bootstrap = cluster.up(kafka_dir, base_port=first, timeout=START_TIMEOUT_S)
        _write(bootstrap, topic, b"before the move")

        # While it runs, another base port is refused in one line (after the progress lines),
        # and nothing changes.
        refused = _cli("up", "--dir", str(kafka_dir), "--base-port", str(second))
        assert refused.returncode != 0
        assert refused.stderr.strip().splitlines()[-1:] == [
            f"Error: {kafka_dir.resolve()} runs on base port {first} (broker 1 is up): "
            f"`wayfinder kafka down --dir {kafka_dir.resolve()}` first to move it to {second}"]
        assert cluster.bootstrap_of(kafka_dir) == bootstrap

        cluster.down(kafka_dir)
        moved = cluster.up(kafka_dir, base_port=second, timeout=START_TIMEOUT_S)
        assert moved == f"127.0.0.1:{second}"
        assert (kafka_dir / "bootstrap").read_text().strip() == moved
        properties = (kafka_dir / "broker-1" / "server.properties").read_text()
        assert f"controller.quorum.voters=1@127.0.0.1:{second + 1}\n" in properties
        assert f"127.0.0.1:{first}" not in properties
        assert _read_one(moved, topic) == b"before the move"
        # A bare `up` after a `down` now restarts it on the new ports.
        cluster.down(kafka_dir)
        again = _cli("up", "--dir", str(kafka_dir))
        assert again.returncode == 0, again.stderr
        assert again.stdout.splitlines()[-1] == moved
    finally:
        cluster.down(kafka_dir)


def test_a_start_that_failed_on_a_busy_port_is_retried_on_another_one(tmp_path):
    busy, retry = _free_base(BUSY_BASE), _free_base(SECOND_BASE + 40)
    kafka_dir = tmp_path / "kafka"
    try:
        with socket.socket() as squatter:  # another server holds the client port
            squatter.bind(("127.0.0.1", busy))
            squatter.listen(1)
            with pytest.raises(cluster.KafkaClusterError, match=f"port {busy} .*another --base-port"):
                cluster.up(kafka_dir, base_port=busy, timeout=START_TIMEOUT_S)
        assert cluster.bootstrap_of(kafka_dir) is None

        bootstrap = cluster.up(kafka_dir, base_port=retry, timeout=START_TIMEOUT_S)
        assert bootstrap == f"127.0.0.1:{retry}"
        topic = f"retried-{uuid.uuid4().hex[:8]}"
        _write(bootstrap, topic, b"served")
        assert _read_one(bootstrap, topic) == b"served"
    finally:
        cluster.down(kafka_dir)
