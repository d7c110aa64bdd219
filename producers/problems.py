"""Problems found while reading cluster input: collected by pure code, published by the loop."""

from __future__ import annotations

from dataclasses import dataclass, field

EXCERPT_CHARS = 200


def excerpt(raw: object) -> str:
    """At most EXCERPT_CHARS characters of the raw input, for a rejection record."""
    if isinstance(raw, bytes):
        text = raw.decode("utf-8", errors="replace")
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


@dataclass
class Problems:
    """Partial problems: the input was used, but a part of it (a label, a port) was dropped."""

    found: list[InputRejected] = field(default_factory=list)

    def add(self, what: str, why: str, raw: object = "") -> None:
        self.found.append(InputRejected(what, why, raw))
