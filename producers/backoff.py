"""Reconnect pacing shared by both producer loops: exponential with jitter, reset on success."""

from __future__ import annotations

import asyncio
import random


class Backoff:
    def __init__(self, first: float = 0.2, limit: float = 10.0):
        self.first = first
        self.limit = limit
        self._next = first

    def next_delay(self) -> float:
        delay = self._next * random.uniform(0.8, 1.2)
        self._next = min(self._next * 2, self.limit)
        return delay

    def reset(self) -> None:
        self._next = self.first


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake at once when ``stop`` is set."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass
