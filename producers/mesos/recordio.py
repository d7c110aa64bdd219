"""RecordIO framing of the Mesos operator API stream: ``<length>\\n<length bytes of JSON>``. Pure.

Feed it chunks as they arrive; it returns whole records. A length line that is not a number
means the framing is lost and the stream has to be reopened; a stream that ends inside a
record is a truncated frame.
"""

from __future__ import annotations

from producers.problems import InputRejected

MAX_RECORD_BYTES = 64 * 1024 * 1024
_MAX_LENGTH_DIGITS = 12


class RecordIODecoder:
    def __init__(self):
        self._buffer = bytearray()
        self._expected: int | None = None

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buffer += chunk
        records = []
        while True:
            if self._expected is None:
                newline = self._buffer.find(b"\n")
                if newline < 0:
                    if len(self._buffer) > _MAX_LENGTH_DIGITS:
                        raise InputRejected("recordio-frame", "no record length line", bytes(self._buffer))
                    return records
                line = bytes(self._buffer[:newline]).strip()
                if not line.isdigit() or int(line) > MAX_RECORD_BYTES:
                    raise InputRejected("recordio-frame", f"bad record length {line[:20]!r}; framing lost", bytes(self._buffer))
                self._expected = int(line)
                del self._buffer[: newline + 1]
            if len(self._buffer) < self._expected:
                return records
            records.append(bytes(self._buffer[: self._expected]))
            del self._buffer[: self._expected]
            self._expected = None

    def finish(self) -> None:
        """Call at end of stream: raises if it ended inside a record."""
        if self._expected is not None or self._buffer.strip():
            got = len(self._buffer)
            want = self._expected if self._expected is not None else "a length line"
            raise InputRejected("recordio-frame", f"truncated frame: stream ended after {got} of {want} bytes", bytes(self._buffer))
