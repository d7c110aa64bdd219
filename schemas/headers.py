"""Kafka record headers: schema id, trace id and the time the producer observed the change.

They travel on tombstones too, so a consumer can measure convergence (applied time minus
observed time) for deletions as well as updates, and follow one cluster event end to end.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

SCHEMA = "wf-schema"
TRACE = "wf-trace"
OBSERVED_NS = "wf-observed-ns"


@dataclass(frozen=True)
class Observation:
    """One observed cluster event: every record it causes carries its trace and time."""

    trace: str
    observed_ns: int

    @classmethod
    def now(cls) -> Observation:
        return cls(os.urandom(8).hex(), time.time_ns())

    def headers(self, schema_id: str) -> list[tuple[str, bytes]]:
        return [
            (SCHEMA, schema_id.encode()),
            (TRACE, self.trace.encode()),
            (OBSERVED_NS, str(self.observed_ns).encode()),
        ]


@dataclass(frozen=True)
class RecordMeta:
    """The headers of a consumed record, parsed."""

    schema: str
    trace: str
    observed_ns: int

    @classmethod
    def from_headers(cls, headers: list[tuple[str, bytes]] | None) -> RecordMeta | None:
        """The metadata of a record, or None when a header is missing or malformed."""
        found = {name: value for name, value in headers or ()}
        try:
            return cls(found[SCHEMA].decode(), found[TRACE].decode(), int(found[OBSERVED_NS]))
        except (KeyError, ValueError, UnicodeDecodeError):
            return None
