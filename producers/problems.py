"""Problems found while reading cluster input: collected by pure code, published by the loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from schemas.mesos import task_key

T = TypeVar("T")

EXCERPT_CHARS = 200


def excerpt(raw: object) -> str:
    """At most EXCERPT_CHARS characters of the raw input, for a rejection record."""
    if isinstance(raw, (bytes, bytearray)):  # a document may be huge: decode only the start
        text = bytes(raw[: EXCERPT_CHARS * 4]).decode("utf-8", errors="replace")
    else:
        text = raw if isinstance(raw, str) else repr(raw)
    return text[:EXCERPT_CHARS]


class InputRejected(ValueError):
    """A whole input (document, frame, event) is unusable; ``what`` names its kind."""

    def __init__(self, what: str, why: str, raw: object = ""):
        super().__init__(f"{what}: {why}")
        self.what = what
        self.why = why
        self.excerpt = excerpt(raw)
        # The id of the one entity refused, when known: its last good record is kept.
        self.entity_id: str | None = None


@dataclass
class Problems:
    """Partial problems: the input was used, but a part of it (a label, a port) was dropped."""

    found: list[InputRejected] = field(default_factory=list)

    def add(self, what: str, why: str, raw: object = "") -> None:
        self.found.append(InputRejected(what, why, raw))


def _id_hint(raw: object) -> str | None:
    """The entity's id when it can be read, so a rejection names what it refused."""
    if not isinstance(raw, dict):
        return None
    framework_id = raw.get("framework_id")
    framework_id = framework_id.get("value") if isinstance(framework_id, dict) else framework_id
    if isinstance(framework_id, str):  # a task: its key names the framework too (schemas.mesos.task_key)
        task_id = raw.get("task_id", raw.get("id"))
        task_id = task_id.get("value") if isinstance(task_id, dict) else task_id
        if isinstance(task_id, str):
            return task_key(framework_id, task_id)[:400]
    for holder in (raw, raw.get("agent_info"), raw.get("framework_info")):
        if isinstance(holder, dict):
            for key in ("task_id", "id"):
                found = holder.get(key)
                found = found.get("value") if isinstance(found, dict) else found
                if isinstance(found, str):
                    return found[:200]
    return None


def parse_entity(what: str, parse: Callable[[object], T], raw: object) -> T:
    """``parse(raw)``; any failure becomes an InputRejected about this one entity.

    The parsers read JSON whose every field may have any type, so an entity with a wrongly
    typed field can fail anywhere inside them (AttributeError on a string where an object
    belongs, OverflowError on 1e400 as a port ...). Catching every exception here is what
    keeps one bad entity from taking its snapshot and the producer down with it.
    """
    try:
        return parse(raw)
    except InputRejected as problem:
        problem.entity_id = problem.entity_id or _id_hint(raw)
        raise
    except Exception as error:  # noqa: BLE001 - see the docstring
        hint = _id_hint(raw)
        named = f"{what} {hint}" if hint else what
        problem = InputRejected(what, f"{named}: unreadable ({type(error).__name__}: {error})", raw)
        problem.entity_id = hint
        raise problem from None


def unreadable_ids(problems: list[InputRejected], what: str) -> set[str]:
    """The ids of the ``what`` entities refused as a whole (kept at their last good record)."""
    return {p.entity_id for p in problems if p.what == what and p.entity_id}
