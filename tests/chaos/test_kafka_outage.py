"""Kafka cut off: the only broker is killed (-9) for 20 s while the cluster changes. Every
process stays up, the node keeps answering exactly what it answered before (its last good
state), and once the broker is back the whole pipeline converges on the changed cluster."""

from __future__ import annotations

import time

import pytest

from runtime.kafka import cluster
from tests.chaos.answers import expected_answers, wrong_answers
from tests.chaos.cluster import assert_converged, await_churn, start_with_apps

pytestmark = pytest.mark.kafka

BASE_PORT = 30392  # this test's own broker: it is the one being killed
OUTAGE_S = 20.0


@pytest.mark.timeout(400)
def test_a_kafka_outage_keeps_the_last_good_state_and_converges_after(tmp_path):
    kafka_dir = tmp_path / "kafka"
    bootstrap = cluster.up(kafka_dir, base_port=BASE_PORT)
    try:
        stack = start_with_apps(bootstrap, tmp_path)
    except BaseException:
        cluster.down(kafka_dir)
        raise
    try:
        assert_converged(stack, "before the outage")
        before = expected_answers(stack.table("dns"))

        cluster.kill_broker(kafka_dir, 1)
        # While Kafka is gone: random churn, and one change that surely shows (app0 grows to 5).
        churn = stack.control("POST", "/sim/churn", {"rate": 5, "seconds": 4})
        await_churn(stack, churn["id"])
        stack.control("PUT", "/sim/apps/chaos/app0/instances/5")
        deadline = time.monotonic() + OUTAGE_S
        while time.monotonic() < deadline:
            assert wrong_answers(stack.dns_port, before) == [], "the node changed its answers without Kafka"
            time.sleep(2.0)
        assert {name: p.pid is not None for name, p in stack.processes.items()} == dict.fromkeys(stack.processes, True)

        cluster.start_broker(kafka_dir, 1)
        assert_converged(stack, "after the outage")
        after = expected_answers(stack.table("dns"))
        assert len(after[("app0.chaos.marathon.mesos.", "A")]) >= 1
        assert len([key for key in after if key[0].startswith("app0-chaos-") and key[1] == "A"
                    and key[0].endswith(".marathon.mesos.")]) == 5
        assert after != before
        assert {name: p.pid is not None for name, p in stack.processes.items()} == dict.fromkeys(stack.processes, True)
    finally:
        stack.close()
        cluster.down(kafka_dir)
