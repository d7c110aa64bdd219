"""Real Apache Kafka for the tests that need one (integration and end-to-end kernel tests): brokers on loopback, started by the test run.

`kafka_bootstrap` (session): one broker on 127.0.0.1:30092, or the cluster named by
WAYFINDER_TEST_BOOTSTRAP (then nothing is started). Tests share it, so each uses its own topic
names and group ids. `kafka_three` (module): three brokers on 30192/30194/30196, for failover.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from runtime.kafka import cluster

SINGLE_BASE_PORT = 30092  # this suite's ports: 30092-30199 (30100-30189: test_kafka_move), below the
# kernel's ephemeral range (32768-60999), so no client socket can be holding one
THREE_BASE_PORT = 30192
START_TIMEOUT_S = 90.0


@dataclass
class ThreeBrokers:
    bootstrap: str
    dir: Path

    def kill(self, node_id: int) -> None:
        cluster.kill_broker(self.dir, node_id)

    def start(self, node_id: int) -> str:
        return cluster.start_broker(self.dir, node_id, timeout=START_TIMEOUT_S)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory) -> str:
    external = os.environ.get("WAYFINDER_TEST_BOOTSTRAP")
    if external:
        yield external
        return
    with _cluster(tmp_path_factory, "kafka-single", 1, SINGLE_BASE_PORT) as (bootstrap, _):
        yield bootstrap


@pytest.fixture(scope="module")
def kafka_three(tmp_path_factory) -> ThreeBrokers:
    with _cluster(tmp_path_factory, "kafka-three", 3, THREE_BASE_PORT) as (bootstrap, dir):
        yield ThreeBrokers(bootstrap, dir)


@contextmanager
def _cluster(tmp_path_factory, name: str, brokers: int, base_port: int):
    _stop_leftovers(tmp_path_factory, base_port, brokers)
    dir = tmp_path_factory.mktemp(name)
    try:  # inside the try: a start that fails half-way still stops what it started
        bootstrap = cluster.up(dir, brokers=brokers, base_port=base_port,
                               timeout=START_TIMEOUT_S)
        yield bootstrap, dir
    finally:
        cluster.down(dir)


def _stop_leftovers(tmp_path_factory, base_port: int, brokers: int) -> None:
    """Stop brokers on our ports left by an earlier run of this suite that was killed before
    its teardown (they run in their own session, so they outlive pytest). Only clusters under
    pytest's own temp root are touched, never anyone else's Kafka."""
    root = tmp_path_factory.getbasetemp().parent  # /tmp/pytest-of-<user>
    ours = {f"127.0.0.1:{base_port + 2 * i}" for i in range(brokers)}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"kafka.Kafka" not in args:
            continue
        props = Path(os.fsdecode(args[args.index(b"kafka.Kafka") + 1]))
        if root not in props.parents or not props.is_file():
            continue
        if any(f"{addr}," in props.read_text() for addr in ours):
            cluster.down(props.parent.parent)  # the cluster directory: stops all its brokers
