"""The last check before an entity becomes a record: its types, and its size. Pure.

msgspec Structs do not check types when they are built, so a normaliser that copies a field
through (a task ``name`` that is a number, an app ``version`` that is an object) would publish
a record that every consumer then refuses. And a record over the topic's maximum message size
(the broker default is 1 MiB) is refused by Kafka itself, raising out of the producer. Both
are checked here, per entity, so only that entity is rejected.
"""

from __future__ import annotations

import msgspec

from producers.problems import InputRejected
from schemas import codec

MAX_VALUE_BYTES = codec.MAX_VALUE_BYTES

# table alias -> the name of one of its entities, as rejections call it
ENTITY_NAMES = {
    "tasks": "task",
    "agents": "agent",
    "frameworks": "framework",
    "cluster": "cluster",
    "apps": "app",
    "app-tasks": "app-task",
}


def record_problem(alias: str, key: str, entity: msgspec.Struct, max_bytes: int = MAX_VALUE_BYTES) -> InputRejected | None:
    """Why ``entity`` cannot be published under ``key`` in table ``alias``; None when it can."""
    what = ENTITY_NAMES.get(alias, alias)
    named = f"{what} {key[:200]}"
    try:
        encoded = codec.encode(entity)  # exactly what would be published
    except (TypeError, OverflowError, ValueError) as error:  # a value JSON cannot carry
        return InputRejected(what, f"{named}: cannot be encoded ({error})", repr(entity))
    size = len(encoded) + len(key.encode("utf-8", errors="replace"))
    if size > max_bytes:
        return InputRejected(what, f"{named}: its record would be {size:,} bytes, over the {max_bytes:,}-byte limit", encoded)
    try:
        msgspec.json.decode(encoded, type=type(entity))
    except msgspec.ValidationError as error:
        return InputRejected(what, f"{named}: wrongly typed field: {error}", encoded)
    return None
