"""Which upstreams a forwarded query goes to: a decaying health and latency score per
upstream, and the choice it drives. Pure; the clock and the randomness are injected.

dcos-dns buckets upstreams by a failure counter that never decays, so an upstream that failed
for a minute last week stays out of favour forever. Here every piece of evidence fades with a
half-life: failures, and the round-trip times too. The score of an upstream is its expected
cost in seconds,

    score = average RTT (weighted by recency) + FAILURE_PENALTY x recent failures,

and as evidence fades the score drifts back towards zero, the score of an upstream nobody
has heard about. So an upstream that failed is avoided while the failures are fresh, then
gets tried again; if it has recovered its answers keep it in favour, if not the new failure
pushes it back.

Choice (dcos-dns `take_upstreams`, with scores instead of buckets): fewer than three
upstreams -> all of them (never more than two in flight anyway); otherwise the best two.
Scores in the same `tie` band count as equal and are ordered at random, so equally good
upstreams share the load.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

U = TypeVar("U", bound=Hashable)

PARALLEL = 2  # dcos-dns: at most two upstream queries in flight per client query


@dataclass(slots=True)
class _Evidence:
    rtt_sum: float = 0.0  # decayed sum of RTT samples (seconds)
    weight: float = 0.0  # decayed number of RTT samples
    failures: float = 0.0  # decayed number of failures
    at: float = 0.0  # when the sums above were last brought up to date


class UpstreamHealth:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic, half_life: float = 10.0,
                 failure_penalty: float = 1.0, max_failures: float = 5.0, tie: float = 0.002,
                 rng: random.Random | None = None) -> None:
        """`failure_penalty`: seconds one fresh failure adds to a score (about a timeout's
        worth). `max_failures`: the failure count is capped so an upstream that was down for
        an hour is back in rotation a few half-lives after it recovers, not hours later."""
        self.clock = clock
        self.half_life = half_life
        self.failure_penalty = failure_penalty
        self.max_failures = max_failures
        self.tie = tie
        self.rng = rng or random.Random()
        self._evidence: dict[Hashable, _Evidence] = {}

    def record_success(self, upstream: Hashable, rtt: float) -> None:
        evidence = self._current(upstream)
        evidence.rtt_sum += max(rtt, 0.0)
        evidence.weight += 1.0

    def record_failure(self, upstream: Hashable) -> None:
        evidence = self._current(upstream)
        evidence.failures = min(evidence.failures + 1.0, self.max_failures)

    def score(self, upstream: Hashable) -> float:
        """Expected cost of asking `upstream`, in seconds; lower is better, 0 for unknown."""
        evidence = self._evidence.get(upstream)
        if evidence is None:
            return 0.0
        fade = self._fade(evidence)
        # Fewer than one sample's worth of weight: the average fades to zero with it, so
        # an upstream we stopped asking becomes worth asking again.
        rtt = evidence.rtt_sum * fade / max(evidence.weight * fade, 1.0)
        return rtt + self.failure_penalty * evidence.failures * fade

    def choose(self, upstreams: Sequence[U]) -> list[U]:
        """The upstreams to ask, best first."""
        if len(upstreams) <= PARALLEL:
            return list(upstreams)
        return self.rank(upstreams)[:PARALLEL]

    def rank(self, upstreams: Sequence[U]) -> list[U]:
        """All of `upstreams`, best first: the order to fall back in."""
        return sorted(upstreams, key=lambda u: (math.floor(self.score(u) / self.tie), self.rng.random()))

    def _fade(self, evidence: _Evidence) -> float:
        return 0.5 ** (max(self.clock() - evidence.at, 0.0) / self.half_life)

    def _current(self, upstream: Hashable) -> _Evidence:
        """The evidence for `upstream`, decayed to now (created when new)."""
        now = self.clock()
        evidence = self._evidence.get(upstream)
        if evidence is None:
            evidence = self._evidence[upstream] = _Evidence(at=now)
            return evidence
        fade = self._fade(evidence)
        evidence.rtt_sum *= fade
        evidence.weight *= fade
        evidence.failures *= fade
        evidence.at = now
        return evidence
