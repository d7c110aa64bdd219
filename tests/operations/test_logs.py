"""The log format, the repeat filter, and librdkafka's lines as JSON."""

from __future__ import annotations

import json
import logging

from runtime.kafka.follower import CatchUpProgress
from runtime.logs import JsonFormatter, RepeatFilter, log_context
from runtime.ports import free_port, free_udp_and_tcp_port
from tests.operations.processes import start, stop_within_bound


def test_json_lines_have_exactly_the_documented_keys():
    record = logging.LogRecord("appliers.node", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
    with log_context(node_id="n1", role="dns", topic="t"):
        from runtime.logs import ContextFilter
        ContextFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert list(line) == ["ts", "level", "logger", "msg", "node_id", "role", "topic"]
    assert (line["level"], line["logger"], line["msg"]) == ("warning", "appliers.node", "hello world")


def test_a_repeating_warning_is_logged_once_then_summarised():
    now = [0.0]
    repeat = RepeatFilter(30.0, clock=lambda: now[0])

    def warning(n: int) -> logging.LogRecord:
        return logging.LogRecord("x", logging.WARNING, __file__, 1, "broker %d away", (n,), None)

    assert repeat.filter(warning(1))
    for i in range(89):
        now[0] += 0.3
        assert not repeat.filter(warning(i))
    now[0] = 31.0
    summary = warning(2)
    assert repeat.filter(summary)
    assert summary.getMessage() == "broker 2 away (and 89 more like it in the last 31 s)"


def test_catch_up_progress_never_passes_100_percent():
    progress = CatchUpProgress(logging.getLogger("t"), "dns")
    progress(150, 100)
    assert (progress.read, progress.total) == (100, 100)


def test_a_node_in_a_broker_outage_logs_a_bounded_number_of_json_lines():
    proc = start("node", "--log-format", "json", "--bootstrap", f"127.0.0.1:{free_port()}", "--node-id", "n1",
                 "--agent-ip", "127.0.0.1", "--roles", "dns", "--dns-listen", f"127.0.0.1:{free_udp_and_tcp_port()}",
                 env={"WAYFINDER_LOG_REPEAT_WINDOW": "3"})
    import time
    time.sleep(10)
    stop_within_bound(proc, 15)
    text = proc.stderr.read()
    raw = [line for line in text.splitlines() if line.strip()]
    assert all(line.startswith("{") for line in raw), "lines that are not JSON:\n" + "\n".join(
        line for line in raw if not line.startswith("{"))[:3000]
    lines = [json.loads(line) for line in raw]
    assert len(lines) < 40, lines
    assert any(line["logger"] == "librdkafka" for line in lines)
    assert any("more like it in the last" in line["msg"] for line in lines)


def test_a_node_roles_json_lines_carry_the_node_id_and_role(kafka_bootstrap):
    import uuid

    from tests.operations.processes import wait_for_line

    namespace = f"logctx{uuid.uuid4().hex[:8]}"
    proc = start("node", "--log-format", "json", "--bootstrap", kafka_bootstrap, "--namespace", namespace,
                 "--node-id", "n1", "--agent-ip", "127.0.0.1", "--roles", "dns",
                 "--dns-listen", f"127.0.0.1:{free_udp_and_tcp_port()}")
    try:
        lines = wait_for_line(proc, '"role":"dns"', 30)
    finally:
        stop_within_bound(proc, 15)
    line = json.loads(lines[-1])
    assert (line["node_id"], line["role"], line["topic"]) == ("n1", "dns", f"{namespace}.dns.records")
