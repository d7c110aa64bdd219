"""Server-sent events framing of the Marathon event bus. Pure.

``event: <type>`` and ``data: <json>`` lines, a blank line ends an event, ``:`` starts a
comment (keep-alive). Feed chunks; whole events come out.

Memory is bounded: a line longer than ``max_line_bytes`` without its newline, or an event
whose data grows past ``max_event_bytes`` before its blank line, raises InputRejected. The
stream cannot be trusted after that (where would the next event start?), so the loop
reconnects, and its resync on connect repairs whatever the dropped part said.
"""

from __future__ import annotations

from dataclasses import dataclass

from producers.problems import InputRejected

# Marathon puts a whole app definition (api_post_event) or deployment plan in one line.
MAX_LINE_BYTES = 8 * 1024 * 1024
MAX_EVENT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class ServerSentEvent:
    event: str
    data: str


class SSEDecoder:
    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES, max_event_bytes: int = MAX_EVENT_BYTES):
        self.max_line_bytes = max_line_bytes
        self.max_event_bytes = max_event_bytes
        self._pending = bytearray()
        self._event = ""
        self._data: list[str] = []
        self._data_bytes = 0

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        # Only the new chunk is searched for newlines: a long line arriving in many small
        # chunks costs linear time, not quadratic.
        searched_from = len(self._pending)
        self._pending += chunk
        events = []
        start = 0
        newline = self._pending.find(b"\n", searched_from)
        while newline >= 0:
            self._line(bytes(self._pending[start:newline]), events)
            start = newline + 1
            newline = self._pending.find(b"\n", start)
        del self._pending[:start]
        if len(self._pending) > self.max_line_bytes:
            size = len(self._pending)
            head = bytes(self._pending[:200])
            self._pending = bytearray()
            raise InputRejected("sse-line", f"a line grew past {self.max_line_bytes:,} bytes ({size:,}) without ending", head)
        return events

    def _line(self, raw: bytes, events: list[ServerSentEvent]) -> None:
        if len(raw) > self.max_line_bytes:
            raise InputRejected("sse-line", f"a line of {len(raw):,} bytes is over the {self.max_line_bytes:,}-byte limit", raw[:200])
        line = raw.rstrip(b"\r").decode("utf-8", errors="replace")
        if not line:
            if self._data or self._event:
                events.append(ServerSentEvent(self._event or "message", "\n".join(self._data)))
            self._event, self._data, self._data_bytes = "", [], 0
        elif line.startswith(":"):
            return
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                self._event = value
            elif name == "data":
                self._data_bytes += len(raw)
                if self._data_bytes > self.max_event_bytes:
                    self._event, self._data, self._data_bytes = "", [], 0
                    raise InputRejected("sse-event", f"an event's data grew past the {self.max_event_bytes:,}-byte limit", raw[:200])
                self._data.append(value)
