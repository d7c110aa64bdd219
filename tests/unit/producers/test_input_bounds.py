"""Bounded memory on every input and checked numbers from the master: the SSE and RecordIO
decoders refuse what would grow without bound, the heartbeat interval is clamped, and a
record over the size limit or with a wrongly typed field is refused before Kafka sees it."""

from __future__ import annotations

import math

import pytest

from producers.marathon.sse import ServerSentEvent, SSEDecoder
from producers.mesos.heartbeat import heartbeat_interval_of
from producers.mesos.recordio import RecordIODecoder
from producers.problems import InputRejected
from producers.record_check import MAX_VALUE_BYTES, record_problem
from schemas.marathon import App
from schemas.mesos import Task


def test_sse_line_that_never_ends_is_refused_once_over_the_bound_and_memory_is_released():
    decoder = SSEDecoder(max_line_bytes=1000, max_event_bytes=4000)
    assert decoder.feed(b"event: status_update_event\ndata: {") == []
    for _ in range(9):
        assert decoder.feed(b"x" * 100) == []
    with pytest.raises(InputRejected) as rejected:
        decoder.feed(b"x" * 100)
    assert rejected.value.what == "sse-line"
    assert rejected.value.why == "a line grew past 1,000 bytes (1,007) without ending"
    assert len(decoder._pending) == 0


def test_sse_event_whose_data_lines_add_up_past_the_bound_is_refused():
    decoder = SSEDecoder(max_line_bytes=1000, max_event_bytes=2500)
    line = b"data: " + b"y" * 900 + b"\n"
    assert decoder.feed(b"event: api_post_event\n" + line + line) == []
    with pytest.raises(InputRejected) as rejected:
        decoder.feed(line)
    assert (rejected.value.what, rejected.value.why) == ("sse-event", "an event's data grew past the 2,500-byte limit")


def test_sse_events_under_the_bounds_pass_whole_even_in_one_byte_chunks():
    stream = b": keep-alive\nevent: deployment_success\ndata: {\"a\": 1}\n\nevent: x\ndata: 2\r\n\r\n"
    decoder = SSEDecoder(max_line_bytes=30, max_event_bytes=60)
    events = [e for i in range(len(stream)) for e in decoder.feed(stream[i : i + 1])]
    assert events == [ServerSentEvent("deployment_success", '{"a": 1}'), ServerSentEvent("x", "2")]


def test_recordio_frame_over_the_bound_is_refused_before_it_is_buffered():
    decoder = RecordIODecoder(max_record_bytes=1000)
    assert decoder.feed(b"5\nHELLO") == [b"HELLO"]
    with pytest.raises(InputRejected) as rejected:
        decoder.feed(b"1001\n{")
    assert rejected.value.what == "recordio-frame"
    assert rejected.value.why == "a record of 1,001 bytes is over the 1,000-byte frame limit"


def test_recordio_frame_at_the_bound_passes():
    decoder = RecordIODecoder(max_record_bytes=1000)
    assert decoder.feed(b"1000\n" + b"z" * 1000) == [b"z" * 1000]


@pytest.mark.parametrize(
    ("announced", "used", "why"),
    [
        (15, 15.0, None),
        (0.5 * 4, 2.0, None),
        (None, 15.0, None),
        (-1, 15.0, "heartbeat_interval_seconds -1 is not a positive number; using 15s"),
        (0, 15.0, "heartbeat_interval_seconds 0 is not a positive number; using 15s"),
        (math.nan, 15.0, "heartbeat_interval_seconds nan is not a positive number; using 15s"),
        (math.inf, 15.0, "heartbeat_interval_seconds inf is not a positive number; using 15s"),
        ("15", 15.0, "heartbeat_interval_seconds '15' is not a positive number; using 15s"),
        (True, 15.0, "heartbeat_interval_seconds True is not a positive number; using 15s"),
        (0.01, 0.1, "heartbeat_interval_seconds 0.01 is outside 0.1..300; using 0.1s"),
        (0.3, 0.3, None),
        (1e12, 300.0, "heartbeat_interval_seconds 1e+12 is outside 0.1..300; using 300s"),
    ],
)
def test_heartbeat_interval_is_checked_and_clamped(announced, used, why):
    interval, problem = heartbeat_interval_of(announced)
    assert interval == used
    assert (problem.why if problem else None) == why
    if problem:
        assert problem.what == "heartbeat-interval"


def test_a_record_over_the_size_limit_is_refused_with_its_size():
    task = Task(id="big.1", name="big", framework_id="f", agent_id="a", state="TASK_RUNNING",
                labels={f"k{i}": "v" * 1000 for i in range(1700)})
    problem = record_problem("tasks", "big.1", task)
    assert problem.what == "task"
    assert problem.why.startswith("task big.1: its record would be 1,7")
    assert problem.why.endswith(f" bytes, over the {MAX_VALUE_BYTES:,}-byte limit")


def test_a_wrongly_typed_field_is_refused_with_its_path():
    app = App(id="/odd", instances=1, version={"not": "a string"})
    problem = record_problem("apps", "/odd", app)
    assert problem.what == "app"
    assert problem.why == "app /odd: wrongly typed field: Expected `str | null`, got `object` - at `$.version`"


def test_a_valid_entity_passes_the_record_check():
    assert record_problem("apps", "/ok", App(id="/ok", instances=2, labels={"a": "b"})) is None
