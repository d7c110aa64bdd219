"""Cold start: Kafka, the simulator, the producer, two processors and a DNS node all started at
the same moment. A client asks the node all the while. No answer may ever be wrong: before the
pipeline is ready the node says SERVFAIL (ask again), never NXDOMAIN for a name that exists,
never part of a name's records, and `ready.spartan` answers only once everything else does.
"""

from __future__ import annotations

import random
import threading
import time

import pytest

from runtime.kafka import cluster
from tests.chaos.answers import Answer, ask, expected_answers
from tests.chaos.derive import fresh_derivation
from tests.chaos.stack import Stack
from tests.scenarios.mesos_fixtures import FIXTURES, SCENARIOS

pytestmark = pytest.mark.kafka

STATE = FIXTURES / "mesos-state" / "bad-state-gaal.json"  # the largest recorded state: ~1,300 records
BASE_PORT = 30292  # this test's own broker, started together with everything else
READY_NAME = ("ready.spartan.", "A")
ASK_FOR_S = 150.0  # bound of the whole watch
STEADY_S = 3.0  # after the first complete correct sweep, watch this much longer


def _watched_names(expected: dict) -> list[tuple[str, str]]:
    """Every name with several values (where half an answer would show) and a sample of the
    rest, plus a name that does not exist (NXDOMAIN is right for it at any time)."""
    multi = [key for key, values in expected.items() if len(values) > 1]
    rest = [key for key in expected if key not in multi]
    sample = random.Random(7).sample(rest, min(60, len(rest)))
    return [*multi, *sample, ("no-such-app.marathon.mesos.", "A")]


def test_nothing_wrong_is_ever_answered_while_everything_starts_at_once(tmp_path):
    # The names to watch come from the fixture's golden zone; what they must answer comes from
    # the converged dns topic, itself checked against a fresh derivation of the sources.
    kafka_dir = tmp_path / "kafka"
    bootstrap = cluster.bootstrap_servers(BASE_PORT, 1)
    stack = Stack(bootstrap, tmp_path, STATE, processors=2)
    answers: list[tuple[float, tuple[str, str], Answer]] = []
    stop = threading.Event()
    names: list[tuple[str, str]] = []

    def watch() -> None:
        deadline = time.monotonic() + ASK_FOR_S
        while not stop.is_set() and time.monotonic() < deadline:
            for key in [READY_NAME, *names]:
                answers.append((time.monotonic(), key, ask(stack.dns_port, *key, timeout=0.3)))
            time.sleep(0.01)

    broker = threading.Thread(target=cluster.up, args=(kafka_dir,), kwargs={"base_port": BASE_PORT}, daemon=True)
    try:
        names.extend(_static_names())
        started = time.monotonic()
        broker.start()
        stack.start()
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        broker.join(120)
        expected = _converged(stack, started)
        time.sleep(STEADY_S)
        stop.set()
        watcher.join(10)
    finally:
        stop.set()
        stack.close()
        cluster.down(kafka_dir)

    truth = {key: expected.get(key, ()) for key in names}
    wrong, ready_at = [], None
    for at, key, answer in answers:
        if key == READY_NAME:
            if answer.rcode == "NOERROR" and ready_at is None:
                ready_at = at
            continue
        if answer.rcode in ("SERVFAIL", "TIMEOUT"):
            if ready_at is not None:
                wrong.append(f"{at - started:.2f}s {key}: {answer.rcode} after ready.spartan answered")
            continue
        want = truth[key]
        got_right = (answer.rcode == "NOERROR" and answer.values == want) or (answer.rcode == "NXDOMAIN" and not want)
        if not got_right:
            wrong.append(f"{at - started:.2f}s {key}: {answer.rcode} {list(answer.values)}, expected {list(want)}")
    assert ready_at is not None, f"ready.spartan never answered\n{stack.logs()}"
    assert sum(1 for _, key, a in answers if key != READY_NAME and a.rcode == "NOERROR") > len(names)
    assert wrong == [], "\n".join(wrong[:30])


def _static_names() -> list[tuple[str, str]]:
    """The watched names, from the golden zone of the same fixture (tests/scenarios)."""
    zone = (SCENARIOS / "mesos-state--bad-state-gaal" / "dns.zone").read_text().splitlines()
    expected: dict[tuple[str, str], list[str]] = {}
    for line in zone:
        name, _ttl, _cls, kind, *rdata = line.split()
        # The mesos.thisdcos.directory copies are answered from the mesos names, not the topic.
        if kind in ("A", "AAAA", "SRV") and not name.endswith(".mesos.thisdcos.directory."):
            expected.setdefault((name, kind), []).append(" ".join(rdata))
    return _watched_names({key: tuple(sorted(v)) for key, v in expected.items()})


def _converged(stack: Stack, started: float, timeout: float = 120.0) -> dict:
    """Waits until the dns topic equals a fresh derivation of the sources and the node answers
    every name of it; returns the expected answers."""
    deadline = started + timeout
    last = "nothing read yet"
    while time.monotonic() < deadline:
        try:
            derived = stack.table("dns")
            if derived and derived == fresh_derivation(stack.bootstrap, stack.catalog)["dns"]:
                expected = expected_answers(derived)
                sample = list(expected.items())[:50]
                if all(ask(stack.dns_port, *key).values == values for key, values in sample):
                    return expected
                last = "the node does not answer every name yet"
            else:
                last = f"dns topic has {len(derived)} sets, not yet the fresh derivation"
        except (LookupError, TimeoutError, RuntimeError) as error:
            last = repr(error)
        time.sleep(0.5)
    raise AssertionError(f"no convergence within {timeout}s: {last}\n{stack.logs()}")
