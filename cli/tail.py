"""`wayfinder tail`: records of one topic as readable lines or JSON, filtered. Formatting is pure."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone

import orjson

from runtime.kafka.reader import ConsumedRecord, follow
from schemas.catalog import Topic


def parse_filters(specs: Iterable[str]) -> list[tuple[list[str], str]]:
    """``FIELD=VALUE`` -> (dotted path, value). FIELD may be ``key`` or a path into the value."""
    filters = []
    for spec in specs:
        field, sep, value = spec.partition("=")
        if not sep or not field:
            raise ValueError(f"a filter is FIELD=VALUE, got {spec!r}")
        filters.append((field.split("."), value))
    return filters


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def _lookup(document: object, path: list[str]) -> object:
    for part in path:
        if not isinstance(document, dict) or part not in document:
            return _MISSING
        document = document[part]
    return document


_MISSING = object()


def matches(key: str | None, value: object, filters: list[tuple[list[str], str]]) -> bool:
    for path, wanted in filters:
        found = key if path == ["key"] else _lookup(value, path)
        if found is _MISSING or _as_text(found) != wanted:
            return False
    return True


def as_json(record: ConsumedRecord, value: object) -> bytes:
    """One JSON object per record: topic, key, value (null = tombstone), headers, partition, offset, timestamp."""
    return orjson.dumps(
        {
            "topic": record.topic,
            "key": record.key,
            "value": value,
            "headers": {name: data.decode("utf-8", errors="replace") for name, data in record.headers},
            "partition": record.partition,
            "offset": record.offset,
            "timestamp": record.timestamp_ms,
        }
    )


def as_line(alias: str, record: ConsumedRecord, value: object) -> str:
    """One readable line: time, table, what happened."""
    when = datetime.fromtimestamp(record.timestamp_ms / 1000, tz=timezone.utc).strftime("%H:%M:%S.%f")[:-3]
    if value is None:
        return f"{when} {alias:<10} {record.key}  (deleted)"
    if alias == "events" and isinstance(value, dict):
        fields = " ".join(f"{k}={_as_text(v)}" for k, v in (value.get("fields") or {}).items() if v is not None)
        return f"{when} {value.get('kind', '?'):<20} {value.get('id')}  {fields}"
    if alias == "rejections" and isinstance(value, dict):
        return f"{when} rejected {value.get('source')} {value.get('what')}: {value.get('why')}"
    summary = orjson.dumps(value).decode()
    return f"{when} {alias:<10} {record.key}  {summary[:160] + ('…' if len(summary) > 160 else '')}"


def tail(
    bootstrap: str,
    topic: Topic,
    from_beginning: bool,
    filters: list[tuple[list[str], str]],
    limit: int | None,
    timeout: float | None,
    stop: threading.Event | None = None,
) -> Iterator[tuple[ConsumedRecord, object]]:
    """Matching records with their decoded values; stops after ``limit`` records or ``timeout`` seconds."""
    deadline = time.monotonic() + timeout if timeout is not None else None
    shown = 0
    for record in follow(bootstrap, topic.name, from_beginning, deadline, stop):
        value = orjson.loads(record.value) if record.value is not None else None
        if not matches(record.key, value, filters):
            continue
        yield record, value
        shown += 1
        if limit is not None and shown >= limit:
            return
