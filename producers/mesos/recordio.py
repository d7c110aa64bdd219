"""RecordIO framing of the Mesos operator API stream: ``<length>\\n<length bytes of JSON>``. Pure.

Feed it chunks as they arrive; it returns whole records. A length line that is not a number
means the framing is lost and the stream has to be reopened; a stream that ends inside a
record is a truncated frame. A length over ``max_record_bytes`` is refused before anything
is buffered, so a bad or hostile length cannot make the producer hold gigabytes.
"""

from __future__ import annotations

from producers.problems import InputRejected

# The SUBSCRIBED record holds the whole cluster state, so the bound matches a whole document's.
MAX_RECORD_BYTES = 256 * 1024 * 1024
_MAX_LENGTH_DIGITS = 12


class RecordIODecoder:
    def __init__(self, max_record_bytes: int = MAX_RECORD_BYTES):
        self.max_record_bytes = max_record_bytes
        self._buffer = bytearray()
        self._expected: int | None = None

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buffer += chunk
        records = []
        while True:
            if self._expected is None:
                newline = self._buffer.find(b"\n", 0, _MAX_LENGTH_DIGITS + 2)
                if newline < 0:
                    if len(self._buffer) > _MAX_LENGTH_DIGITS:
                        start = bytes(self._buffer[:20])
                        raise InputRejected("recordio-frame", f"bad record length {start!r}; framing lost", bytes(self._buffer[:200]))
                    return records
                line = bytes(self._buffer[:newline]).strip()
                if not line.isdigit():
                    raise InputRejected("recordio-frame", f"bad record length {line[:20]!r}; framing lost", bytes(self._buffer[:200]))
                if int(line) > self.max_record_bytes:
                    raise InputRejected(
                        "recordio-frame",
                        f"a record of {int(line):,} bytes is over the {self.max_record_bytes:,}-byte frame limit",
                        bytes(self._buffer[:200]),
                    )
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
            raise InputRejected("recordio-frame", f"truncated frame: stream ended after {got} of {want} bytes", bytes(self._buffer[:200]))
