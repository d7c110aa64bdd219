"""`wayfinder demo` exits within 5 s of Ctrl-C and leaves no Kafka broker of its own running
(they run in their own session: no terminal's signal reaches them), even when Ctrl-C comes
while that Kafka starts (longer than the grace); a demo given --bootstrap leaves that Kafka
alone, even when its --kafka-dir is where that Kafka lives."""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from runtime.kafka import cluster
from runtime.kafka.node import bindable
from tests.operations.processes import STOP_BOUND_S, start, stop_within_bound, wait_for_line

pytestmark = pytest.mark.kafka

STARTED = "history of every change"  # stderr, once Kafka serves, right before the scenario starts


def _free_base() -> int:
    """An even base port >= 45000 whose client and controller ports are both free."""
    for _ in range(200):
        base = random.randrange(45000, 49000, 2)
        if bindable(base) and bindable(base + 1):
            return base
    raise AssertionError("no free port pair in 45000-49000")


def _demo(*args: str) -> subprocess.Popen:
    return start("demo", "--namespace", f"sig{uuid.uuid4().hex[:8]}", "--duration", "60", *args)


def _running(proc: subprocess.Popen) -> None:
    """Until the demo runs its scenario, then keeps its pipes drained (a full one would block it)."""
    wait_for_line(proc, STARTED, 90)
    for pipe in (proc.stdout, proc.stderr):
        threading.Thread(target=pipe.read, daemon=True).start()


def _jvms_of(dir: Path) -> list[int]:
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes()
        except OSError:
            continue
        if b"kafka.Kafka" in args and str(dir).encode() in args:
            pids.append(int(cmdline.parent.name))
    return pids


def _no_broker_left(kafka_dir: Path) -> None:
    assert [broker["pid"] for broker in cluster.status(kafka_dir)] in ([], [None])
    assert _jvms_of(kafka_dir) == []


def test_ctrl_c_while_the_demos_kafka_starts_stops_that_kafka(tmp_path):
    kafka_dir = (tmp_path / "kafka").resolve()
    proc = _demo("--kafka-dir", str(kafka_dir), "--base-port", str(_free_base()))
    try:
        wait_for_line(proc, "starting Apache Kafka", 30)
        deadline = time.monotonic() + 60
        while not any(broker["pid"] for broker in cluster.status(kafka_dir)):  # its JVM runs, not ready yet
            assert time.monotonic() < deadline and proc.poll() is None, "no broker started"
            time.sleep(0.05)
        took, code = stop_within_bound(proc, signal.SIGINT)
        assert took < STOP_BOUND_S and code in (0, 130), (took, code)
        _no_broker_left(kafka_dir)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        cluster.down(kafka_dir, timeout=5)


def test_the_demo_stops_its_own_kafka_on_ctrl_c_and_not_one_given_with_bootstrap(tmp_path):
    kafka_dir = (tmp_path / "kafka").resolve()
    base = _free_base()
    own = _demo("--kafka-dir", str(kafka_dir), "--base-port", str(base))
    given = None
    try:
        _running(own)
        given = _demo("--bootstrap", f"127.0.0.1:{base}", "--kafka-dir", str(kafka_dir))
        _running(given)
        took, code = stop_within_bound(given, signal.SIGINT)
        assert took < STOP_BOUND_S and code in (0, 130), (took, code)
        assert all(broker["pid"] for broker in cluster.status(kafka_dir)), "stopped a Kafka it was given"

        took, code = stop_within_bound(own, signal.SIGINT)
        assert took < STOP_BOUND_S and code in (0, 130), (took, code)
        _no_broker_left(kafka_dir)
    finally:
        for proc in (own, given):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        cluster.down(kafka_dir, timeout=5)
