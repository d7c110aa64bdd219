"""A node's view of its upstream (runtime/status.py): stale marks are named, and logged once
per transition, not on every check."""

from __future__ import annotations

import logging

from runtime.status import UpstreamLog, upstream_problems
from schemas.status import Mark

NOW = 10_000.0


def mark(role: str, age: float, lag: int = 0) -> Mark:
    return Mark(role, f"{role}-1", 0.0, NOW - age, True, ready=role == "processor", lag=lag)


def test_problems_name_silent_writers_a_missing_processor_and_a_processor_far_behind():
    assert upstream_problems({"producer/mesos": mark("producer", 1), "processor": mark("processor", 2)}, NOW) == []
    assert upstream_problems({"producer/mesos": mark("producer", 31)}, NOW) == [
        "producer/mesos silent for over 30s", "no processor mark"]
    assert upstream_problems({"processor": mark("processor", 1, lag=20_000)}, NOW) == [
        "processor more than 10000 source records behind"]


def test_a_stale_upstream_is_logged_once_per_transition(caplog):
    watch = UpstreamLog(logging.getLogger("test-upstream"), "node n1")
    healthy = {"processor": mark("processor", 1)}
    silent = {"processor": mark("processor", 45)}
    with caplog.at_level(logging.INFO, "test-upstream"):
        for marks, now in [(healthy, NOW), (silent, NOW), (silent, NOW + 1), (silent, NOW + 20), (healthy, NOW)]:
            watch.check(marks, now)
    assert [r.getMessage() for r in caplog.records] == [
        "node n1: upstream stale, serving the last good state: processor silent for over 30s",
        "node n1: upstream current again",
    ]
