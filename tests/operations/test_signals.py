"""Every long-running command exits within 5 s of SIGTERM or SIGINT, whatever it is doing:
exit code 0 for a clean stop, 128 + the signal (143, 130) when the grace ran out."""

from __future__ import annotations

import signal
import uuid

import pytest

from runtime.ports import free_port, free_udp_and_tcp_port
from tests.operations.processes import STOP_BOUND_S, start, stop_within_bound, wait_for_line

CLEAN_OR_FORCED = {signal.SIGTERM: (0, 143), signal.SIGINT: (0, 130)}
SIGNALS = [signal.SIGTERM, signal.SIGINT]


def unreachable() -> str:
    return f"127.0.0.1:{free_port()}"  # nothing listens there


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: s.name)
def test_a_node_against_an_unreachable_kafka_stops(signum):
    proc = start("node", "--bootstrap", unreachable(), "--node-id", "n1", "--agent-ip", "127.0.0.1",
                 "--roles", "dns", "--dns-listen", f"127.0.0.1:{free_udp_and_tcp_port()}")
    wait_for_line(proc, "no Kafka broker answers yet", 20)
    took, code = stop_within_bound(proc, signum)
    assert took < STOP_BOUND_S and code in CLEAN_OR_FORCED[signum]


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: s.name)
def test_a_processor_against_an_unreachable_kafka_stops(signum):
    proc = start("process", "--bootstrap", unreachable(), "--namespace", f"sig{uuid.uuid4().hex[:8]}")
    wait_for_line(proc, "cannot reach Kafka at", 30)
    took, code = stop_within_bound(proc, signum)
    assert took < STOP_BOUND_S and code in CLEAN_OR_FORCED[signum]


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: s.name)
def test_a_producer_against_unreachable_kafka_and_mesos_stops(signum):
    proc = start("produce", "--bootstrap", unreachable(), "--mesos", f"http://{unreachable()}",
                 "--marathon", f"http://{unreachable()}")
    wait_for_line(proc, "cannot reach Kafka at", 30)
    took, code = stop_within_bound(proc, signum)
    assert took < STOP_BOUND_S and code in CLEAN_OR_FORCED[signum]


@pytest.mark.kafka
@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: s.name)
def test_a_node_stops_during_the_catch_up_of_a_big_table(kafka_bootstrap, big_dns_table, signum):
    proc = start("node", "--bootstrap", kafka_bootstrap, "--namespace", big_dns_table, "--node-id", "n1",
                 "--agent-ip", "127.0.0.1", "--roles", "dns", "--dns-listen", f"127.0.0.1:{free_udp_and_tcp_port()}")
    wait_for_line(proc, "catching up", 60)
    took, code = stop_within_bound(proc, signum)
    assert took < STOP_BOUND_S and code in CLEAN_OR_FORCED[signum]
    assert code == 0, "a catch-up is interrupted cleanly, not by the grace running out"


@pytest.fixture(scope="module")
def big_dns_table(kafka_bootstrap) -> str:
    """A namespace whose dns table holds a million records (refused ones: the catch-up reads
    them all the same), enough for a catch-up of several seconds."""
    from confluent_kafka import Producer

    from runtime.kafka.topics import ensure_topics
    from schemas.catalog import Catalog

    catalog = Catalog(f"sig{uuid.uuid4().hex[:8]}")
    ensure_topics(kafka_bootstrap, catalog)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 50, "compression.type": "lz4",
                         "queue.buffering.max.messages": 1_000_000})
    topic = catalog.topic("dns").name
    for i in range(1_000_000):
        producer.produce(topic, key=f"name-{i}", value=b"{}")
        if i % 100_000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0
    return catalog.namespace


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: s.name)
def test_the_simulator_stops(signum):
    proc = start("simulate", "--log-format", "json", "--mesos-listen", "127.0.0.1:0", "--marathon-listen", "127.0.0.1:0")
    assert proc.stdout.readline().startswith("mesos: ")
    took, code = stop_within_bound(proc, signum)
    assert took < STOP_BOUND_S and code in CLEAN_OR_FORCED[signum]
