"""Chaos: kill -9 of the producer, the active processor, a standby, the node and a broker, at
random points of a churn, 20 rounds in all, on three real brokers. After every round the
derived topics equal a fresh derivation of the sources, the sources equal the simulated
cluster, and the node answers (and, with root, programs into nftables) exactly that.
"""

from __future__ import annotations

import os
import random
import time

import pytest

from tests.chaos.cluster import assert_converged, await_churn, start_with_apps
from tests.chaos.stack import Stack

pytestmark = pytest.mark.kafka

ROUNDS = 20
VICTIMS = ("producer", "active processor", "standby processor", "node", "broker")
CHURN_RATE, CHURN_S = 8, 3  # task changes a second, seconds a round
SEED = int(os.environ.get("WAYFINDER_CHAOS_SEED", "0")) or random.randrange(1, 1 << 30)


@pytest.fixture
def stack(kafka_three, tmp_path):
    running = start_with_apps(kafka_three.bootstrap, tmp_path)
    try:
        yield running
    finally:
        running.close()


@pytest.mark.timeout(ROUNDS * 60 + 120)
def test_twenty_rounds_of_kill_9_leave_every_table_and_answer_right(stack, kafka_three):
    rng = random.Random(SEED)
    print(f"chaos seed {SEED} (WAYFINDER_CHAOS_SEED reruns it)")
    assert_converged(stack, "start")
    for round_no in range(ROUNDS):
        victim = VICTIMS[round_no % len(VICTIMS)]
        churn = stack.control("POST", "/sim/churn", {"rate": CHURN_RATE, "seconds": CHURN_S})
        time.sleep(rng.uniform(0.2, CHURN_S - 0.5))
        restart = _kill(stack, kafka_three, victim, rng)
        time.sleep(rng.uniform(0.3, 1.5))
        restart()
        await_churn(stack, churn["id"])
        converged = time.monotonic()
        assert_converged(stack, f"round {round_no + 1} ({victim})")
        print(f"round {round_no + 1:2d}: kill -9 {victim:18s} converged {time.monotonic() - converged:5.1f}s after "
              f"the churn ended")


def _kill(stack: Stack, brokers, victim: str, rng: random.Random):
    """SIGKILL the victim now; returns how to bring it back."""
    if victim == "broker":
        node_id = rng.randint(1, 3)
        brokers.kill(node_id)
        return lambda: brokers.start(node_id)
    if victim in ("active processor", "standby processor"):
        active = _await_active(stack)
        process = active if victim == "active processor" else next(
            p for name, p in stack.processes.items() if name.startswith("processor-") and p is not active)
    else:
        process = stack[victim]
    process.kill()
    return process.start


def _await_active(stack: Stack, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        active = stack.active_processor()
        if active is not None:
            return active
        time.sleep(0.2)
    raise AssertionError(f"no active processor within {timeout}s\n{stack.logs()}")


