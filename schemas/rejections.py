"""Rejected input: every document or event a producer refused, and why."""

from __future__ import annotations

from msgspec import Struct


class Rejection(Struct, frozen=True):
    """One refused input. Key: the source (``mesos`` or ``marathon``).

    ``what`` names the kind of input (``master-state``, ``recordio-frame``, ``sse-event`` …),
    ``why`` says what was wrong, and ``excerpt`` holds at most 200 characters of it.
    """

    source: str
    what: str
    why: str
    excerpt: str
    observed_at: float
