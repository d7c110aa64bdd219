"""What `wayfinder demo` prints for a person watching (cli/demo/lines.py): history lines of real
``events`` records (tests/unit/demo_events.jsonl, recorded from a demo run: the longest line of
each kind) fit the terminal, and the closing summary of convergence figures."""

from __future__ import annotations

import logging
from pathlib import Path

import orjson

from cli.demo.lines import (DONE, WIDTH, FittedFormatter, OwnWarnings, fit, history_line, percentile, summary,
                            wrapped)
from runtime.kafka.reader import ConsumedRecord
from runtime.logs import TextFormatter

EVENTS = [orjson.loads(line) for line in (Path(__file__).parent / "demo_events.jsonl").read_text().splitlines()]


def _record(row: dict) -> ConsumedRecord:
    return ConsumedRecord(row["topic"], row["partition"], row["offset"], row["timestamp"], row["key"],
                          orjson.dumps(row["value"]), [])


def _by_kind(kind: str) -> dict:
    return next(row for row in EVENTS if row["value"]["kind"] == kind)


def test_every_recorded_event_fits_the_width_in_bytes():
    lines = [history_line(_record(row), row["value"]) for row in EVENTS]
    assert len({row["value"]["kind"] for row in EVENTS}) == 13  # every kind the demo produces
    assert all(len(line.encode()) <= WIDTH for line in lines), [line for line in lines if len(line.encode()) > WIDTH]


def test_a_task_line_drops_the_framework_and_cuts_the_uuids_short():
    row = _by_kind("task_health_changed")
    assert history_line(_record(row), row["value"]) == \
        "14:12:59 task_health_changed shop_web.08da3664  state=RUNNING healthy=true ips=172.17.0.2"


def test_fields_that_say_something_stay():
    agent = _by_kind("agent_added")
    assert history_line(_record(agent), agent["value"]) == \
        "14:12:57 agent_added         30257977-S0  hostname=172.17.0.4 ip=172.17.0.4 active=true"
    framework = _by_kind("framework_added")
    assert history_line(_record(framework), framework["value"]) == \
        "14:12:57 framework_added     30257977-0000  name=metronome active=true"


def test_a_line_too_long_is_cut_with_an_ellipsis_and_a_tombstone_says_deleted():
    row = _by_kind("task_running")
    line = history_line(_record(row), row["value"])
    assert line.endswith("…") and len(line.encode()) == WIDTH  # the IPv6 task: two addresses
    deleted = ConsumedRecord("wayfinder.events", 0, 1, row["timestamp"], "a" * 200, None, [])
    assert history_line(deleted, None).endswith("…")
    assert history_line(ConsumedRecord("t", 0, 1, row["timestamp"], "/shop/cart", None, []), None) == \
        "14:12:57 /shop/cart  (deleted)"


def test_fit_counts_bytes_and_never_splits_a_character():
    assert fit("x" * WIDTH) == "x" * WIDTH
    cut = fit("é" * WIDTH)
    assert len(cut.encode()) <= WIDTH and cut.endswith("…") and set(cut[:-1]) == {"é"}


def test_wrapped_lines_fit_and_continue_under_the_tag():
    text = "overlay    agents 10.98.0.1, 10.98.0.2: leases 9.0.6.0/25, 9.0.4.0/25; containers c1 9.0.6.2 " \
           "on 10.98.0.1, c2 9.0.4.2 on 10.98.0.2 and a word longer than the line " + "z" * 150
    lines = wrapped(text)
    assert len(lines) >= 3 and all(len(line.encode()) <= WIDTH for line in lines)
    assert all(line.startswith(" " * 11) for line in lines[1:])
    assert len(wrapped(DONE.format(parts="VIP, vhost, overlay"))) == 1


def test_percentile_is_the_nearest_rank():
    samples = [float(n) for n in range(1, 101)]
    assert (percentile(samples, 0.5), percentile(samples, 0.99), percentile(samples, 0.07)) == (50.0, 99.0, 7.0)
    assert percentile([3.0], 0.99) == 3.0 and percentile([2.0, 1.0], 0.5) == 1.0


def test_summary_counts_and_quantiles_per_role():
    assert summary(101, {"l4lb": [0.5, 0.1, 0.3], "dns": [1.0] * 99 + [2.0], "haproxy": []}) == [
        "summary    101 history events seen; convergence, producer to node:",
        "           dns        100 changes  p50 1.000 s  p99 1.000 s",
        "           haproxy  no change measured",
        "           l4lb         3 changes  p50 0.300 s  p99 0.500 s",
    ]
    assert summary(0, {})[1:] == ["           no node ran (their parts of the demo were skipped)"]


def test_logs_show_our_warnings_and_only_the_libraries_errors():
    def record(name: str, level: int) -> logging.LogRecord:
        return logging.LogRecord(name, level, __file__, 1, "m", (), None)

    keep = OwnWarnings().filter
    assert keep(record("processors.active", logging.WARNING)) and keep(record("wayfinder", logging.ERROR))
    assert not keep(record("runtime.reconcile", logging.INFO))
    assert not keep(record("librdkafka", logging.WARNING)) and keep(record("librdkafka", logging.ERROR))
    assert not keep(record("aiokafka.consumer", logging.WARNING))


def test_a_long_log_line_is_wrapped_to_the_width():
    message = "processor vm:1:2 is active (epoch 1, election term 1) after 0.97s: " + "x " * 80
    text = FittedFormatter(TextFormatter()).format(
        logging.LogRecord("processors.active", logging.WARNING, __file__, 1, message, (), None))
    assert len(text.splitlines()) > 1 and all(len(line.encode()) <= WIDTH for line in text.splitlines())
