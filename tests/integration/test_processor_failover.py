"""Several `wayfinder process` on one namespace, against a real Kafka: one active, the others
warm standbys; kill -9, a clean stop, a restart and a pause (SIGSTOP) of the active.

After every takeover the `vips` and `dns` topics must equal a fresh derivation from the
source topics, and named VIPs keep their addresses. Fencing: the processor mark travels in
every transaction, so the committed marks name each writer in turn; an instance that appears
again after another took over would have committed after losing the role.
"""

from __future__ import annotations

import signal
import time

import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.integration.processor_cluster import (
    ProcessorProcesses,
    SourceWriter,
    backends,
    expected_outputs,
    named_addresses,
    new_catalog,
    outputs,
    pid_of,
    processor_marks,
    wait_for,
)

pytestmark = pytest.mark.kafka

# Any stock broker accepts 6 s; a takeover after kill -9 then takes the session timeout plus
# a rebalance and the takeover itself.
SESSION_MS = 6000
TAKEOVER_BOUND_S = SESSION_MS / 1000 + 6
APPS = 8


@pytest.fixture
def cluster(kafka_bootstrap, tmp_path):
    catalog = new_catalog(kafka_bootstrap)
    writer = SourceWriter(kafka_bootstrap, catalog, APPS)
    processes = ProcessorProcesses(kafka_bootstrap, catalog, tmp_path, SESSION_MS)
    try:
        yield kafka_bootstrap, catalog, writer, processes
    finally:
        processes.stop_all()
        writer.close()


def converged(bootstrap, catalog) -> dict | None:
    """The output tables, once they equal a fresh derivation from the sources."""
    found = outputs(bootstrap, catalog)
    return found if found == expected_outputs(bootstrap, catalog, found) else None


def wait_converged(bootstrap, catalog, timeout: float = 30.0) -> dict:
    return wait_for(lambda: converged(bootstrap, catalog), timeout, "outputs equal a fresh derivation", every=0.5)


def active_pid(bootstrap, catalog, among: set[int], timeout: float = 60.0, other_than: int | None = None) -> int:
    def find():
        marks = processor_marks(bootstrap, catalog)
        pid = pid_of(marks[-1]) if marks else None
        return pid if pid in among and pid != other_than else None

    return wait_for(find, timeout, "a processor mark from a running processor", every=0.2)


def launch_and_time(bootstrap, catalog, writer: SourceWriter, timeout: float) -> float:
    """Launch one task; seconds until the vips topic has it as a backend."""
    started = time.monotonic()
    task = writer.launch(0)
    writer.sink.flush()
    wait_for(lambda: task.id in backends(outputs(bootstrap, catalog)["vips"]), timeout, f"backend {task.id} published",
             every=0.1)
    return time.monotonic() - started


def writers_in_turn(bootstrap, catalog) -> list[str]:
    """The instances of the committed processor marks, consecutive repeats folded."""
    turns: list[str] = []
    for mark in processor_marks(bootstrap, catalog):
        if not turns or turns[-1] != mark.instance:
            turns.append(mark.instance)
    return turns


def test_two_processors_kill9_of_the_active_then_a_standby_takes_over(cluster):
    bootstrap, catalog, writer, processes = cluster
    writer.load()
    pids = {processes.start(), processes.start()}
    first = active_pid(bootstrap, catalog, pids)
    before = wait_converged(bootstrap, catalog)
    assert len(named_addresses(before["vips"])) == APPS

    writer.churn(40)
    wait_converged(bootstrap, catalog)
    addresses = named_addresses(outputs(bootstrap, catalog)["vips"])
    processes.signal(first, signal.SIGKILL)
    took = launch_and_time(bootstrap, catalog, writer, TAKEOVER_BOUND_S)
    second = active_pid(bootstrap, catalog, pids - {first})
    assert second != first and took < TAKEOVER_BOUND_S

    writer.churn(40)
    after = wait_converged(bootstrap, catalog)
    kept = named_addresses(after["vips"])
    assert {name: kept[name] for name in addresses if name in kept} == {name: addresses[name] for name in addresses if name in kept}
    assert writers_in_turn(bootstrap, catalog)[-1].split(":")[1] == str(second)


def test_a_clean_stop_hands_over_at_once_and_a_restart_resumes(cluster):
    bootstrap, catalog, writer, processes = cluster
    writer.load()
    pids = {processes.start(), processes.start()}
    first = active_pid(bootstrap, catalog, pids)
    wait_converged(bootstrap, catalog)

    processes.signal(first, signal.SIGTERM)
    assert "stepped down: stopping" in processes.log(first)
    took = launch_and_time(bootstrap, catalog, writer, 5.0)  # no session timeout to wait out
    assert took < 5.0
    second = active_pid(bootstrap, catalog, pids - {first})
    wait_converged(bootstrap, catalog)

    # The only processor killed, and a new one started: it resumes within seconds.
    processes.signal(second, signal.SIGKILL)
    writer.churn(10)
    third = processes.start()
    active_pid(bootstrap, catalog, {third}, timeout=TAKEOVER_BOUND_S + 20)
    wait_converged(bootstrap, catalog)


def test_three_processors_a_paused_active_is_fenced(cluster):
    bootstrap, catalog, writer, processes = cluster
    writer.load()
    pids = {processes.start() for _ in range(3)}
    first = active_pid(bootstrap, catalog, pids)
    wait_converged(bootstrap, catalog)

    processes.signal(first, signal.SIGSTOP)
    deadline = time.monotonic() + TAKEOVER_BOUND_S + 10
    second = None
    while second is None and time.monotonic() < deadline:
        writer.churn(5)  # the paused one's follower has these buffered when it wakes up
        marks = processor_marks(bootstrap, catalog)
        second = pid_of(marks[-1]) if marks and pid_of(marks[-1]) != first else None
        time.sleep(0.3)
    assert second in pids - {first}, "no standby took over from the paused active"

    processes.signal(first, signal.SIGCONT)
    for _ in range(10):
        writer.churn(5)
        time.sleep(0.3)
    wait_converged(bootstrap, catalog)
    wait_for(lambda: "stepped down" in processes.log(first), 20, "the resumed old active stepped down")

    turns = writers_in_turn(bootstrap, catalog)
    assert len(turns) == len(set(turns)), f"an instance committed again after another took over: {turns}"
    assert str(first) not in turns[-1].split(":")[1]


def test_an_output_is_ready_once_it_reflects_its_synced_producers(cluster):
    bootstrap, catalog, writer, processes = cluster
    writer.load()
    pid = processes.start()
    active_pid(bootstrap, catalog, {pid})
    wait_converged(bootstrap, catalog)
    first = processor_marks(bootstrap, catalog)[-1]
    assert (first.ready, first.ready_outputs, first.synced_at) == (False, [], None)  # no producer is in sync

    writer.churn(5)
    ends = {"tasks": {p: o for p, o in enumerate(_end_offsets(bootstrap, catalog.topic("tasks").name))}}
    writer.mark_producer_synced(ends)
    ready = wait_for(lambda: [m for m in processor_marks(bootstrap, catalog) if m.ready_outputs], 15,
                     "a processor mark with ready outputs")[0]
    # Only the Mesos producer has synced: the outputs of Mesos sources are ready, haproxy
    # (Marathon apps and tasks) waits, and so `ready` (every output) stays false.
    assert {"dns", "vips"} <= set(ready.ready_outputs) and "haproxy" not in ready.ready_outputs and not ready.ready
    assert all(ready.positions["tasks"][p] >= o for p, o in ends["tasks"].items())
    assert ready.lag == 0 and ready.in_sync and ready.synced_at is not None and ready.epoch >= 1

    writer.mark_producer_synced({}, source="marathon")  # synced with no apps: nothing to reach
    every = wait_for(lambda: [m for m in processor_marks(bootstrap, catalog) if m.ready], 15, "a ready processor mark")[0]
    assert {"dns", "haproxy", "vips"} <= set(every.ready_outputs) and every.synced_at == ready.synced_at

    # Rewritten on a heartbeat while nothing changes.
    count = len(processor_marks(bootstrap, catalog))
    wait_for(lambda: len(processor_marks(bootstrap, catalog)) > count, 12, "a heartbeat mark", every=0.5)


def _end_offsets(bootstrap: str, topic: str) -> list[int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "ends"})
    try:
        partitions = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        return [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions]
    finally:
        consumer.close()
