"""Server-sent events framing of the Marathon event bus. Pure.

``event: <type>`` and ``data: <json>`` lines, a blank line ends an event, ``:`` starts a
comment (keep-alive). Feed chunks; whole events come out.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_EVENT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class ServerSentEvent:
    event: str
    data: str


class SSEDecoder:
    def __init__(self):
        self._pending = b""
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        self._pending += chunk
        events = []
        *lines, self._pending = self._pending.split(b"\n")
        if len(self._pending) > MAX_EVENT_BYTES:
            self._pending = b""  # a runaway line; what follows resynchronises on the next newline
        for raw in lines:
            line = raw.rstrip(b"\r").decode("utf-8", errors="replace")
            if not line:
                if self._data or self._event:
                    events.append(ServerSentEvent(self._event or "message", "\n".join(self._data)))
                self._event, self._data = "", []
            elif line.startswith(":"):
                continue
            else:
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "event":
                    self._event = value
                elif name == "data":
                    self._data.append(value)
        return events
