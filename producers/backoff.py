"""Reconnect pacing shared by both producer loops: exponential with jitter, reset on success."""

from __future__ import annotations

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
