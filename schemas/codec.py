"""JSON encoding of entity values: compact msgspec JSON out, typed and validated msgspec decoding in."""

from __future__ import annotations

from typing import TypeVar

import msgspec

T = TypeVar("T")

# The largest record value any writer publishes. Kafka refuses a record over about 1 MiB
# (librdkafka's message.max.bytes, the broker's max.message.bytes), key, headers and batch
# framing included; a writer that sent one would fail, so it refuses the value first.
MAX_VALUE_BYTES = 900 * 1024

# One encoder for the process: it encodes a struct in one pass (a third of the time of going
# through plain Python values), which the processor does for every record it publishes.
_ENCODER = msgspec.json.Encoder()


def encode(entity: msgspec.Struct) -> bytes:
    """The record value of an entity: compact JSON, fields in declaration order. Integer
    mapping keys (partition numbers in readiness marks) become strings, as JSON needs."""
    return _ENCODER.encode(entity)


def decode(data: bytes, value_type: type[T]) -> T:
    """Parse and validate a record value; raises msgspec.ValidationError on a bad value."""
    return msgspec.json.decode(data, type=value_type)


def to_plain(entity: msgspec.Struct) -> dict:
    """The entity as plain JSON-ready Python values."""
    return msgspec.to_builtins(entity)
