"""RecordIO (Mesos) and SSE (Marathon) framing, fed in awkward chunks."""

import pytest

from producers.marathon.sse import ServerSentEvent, SSEDecoder
from producers.mesos.recordio import RecordIODecoder
from producers.problems import InputRejected


def frame(payload: bytes) -> bytes:
    return str(len(payload)).encode() + b"\n" + payload


def test_recordio_records_split_across_chunks():
    stream = frame(b'{"type":"HEARTBEAT"}') + frame(b'{"type":"TASK_ADDED","task_added":{}}')
    decoder = RecordIODecoder()
    records = []
    for i in range(0, len(stream), 7):
        records += decoder.feed(stream[i : i + 7])
    decoder.finish()
    assert records == [b'{"type":"HEARTBEAT"}', b'{"type":"TASK_ADDED","task_added":{}}']


def test_recordio_bad_length_line_loses_framing():
    decoder = RecordIODecoder()
    with pytest.raises(InputRejected, match="bad record length"):
        decoder.feed(b'{"type":"HEARTBEAT"}\n')


def test_recordio_stream_ending_inside_a_record_is_a_truncated_frame():
    decoder = RecordIODecoder()
    assert decoder.feed(b'50\n{"type":"TASK_') == []
    with pytest.raises(InputRejected) as refused:
        decoder.finish()
    assert refused.value.what == "recordio-frame"
    assert refused.value.why == "truncated frame: stream ended after 14 of 50 bytes"


def test_sse_events_comments_and_crlf():
    stream = (
        b": keep-alive\r\n\r\n"
        b"event: status_update_event\r\ndata: {\"taskId\":\"a\"}\r\n\r\n"
        b"event: api_post_event\ndata: {\"x\":\ndata: 1}\n\n"
    )
    decoder = SSEDecoder()
    events = []
    for i in range(0, len(stream), 5):
        events += decoder.feed(stream[i : i + 5])
    assert events == [
        ServerSentEvent("status_update_event", '{"taskId":"a"}'),
        ServerSentEvent("api_post_event", '{"x":\n1}'),
    ]
