"""The heartbeat interval a master announces in SUBSCRIBED, checked and clamped. Pure.

The producer declares the stream dead after a few missed heartbeats, so this number sets a
timeout: a negative one made every read time out at once (the Mesos side reconnected
forever), a huge one would hide a dead stream for days, and NaN or a string cannot be used.
"""

from __future__ import annotations

import math

from producers.problems import InputRejected

DEFAULT_HEARTBEAT_S = 15.0  # Mesos's own default
MIN_HEARTBEAT_S = 0.1  # tests and small clusters use sub-second heartbeats
MAX_HEARTBEAT_S = 300.0


def heartbeat_interval_of(raw: object) -> tuple[float, InputRejected | None]:
    """(the interval to use, the problem with the announced one or None)."""
    if raw is None:
        return DEFAULT_HEARTBEAT_S, None
    usable = isinstance(raw, (int, float)) and not isinstance(raw, bool) and math.isfinite(raw) and raw > 0
    if not usable:
        return DEFAULT_HEARTBEAT_S, InputRejected(
            "heartbeat-interval",
            f"heartbeat_interval_seconds {raw!r:.40} is not a positive number; using {DEFAULT_HEARTBEAT_S:g}s",
            repr(raw),
        )
    clamped = min(max(float(raw), MIN_HEARTBEAT_S), MAX_HEARTBEAT_S)
    if clamped != raw:
        return clamped, InputRejected(
            "heartbeat-interval",
            f"heartbeat_interval_seconds {raw:g} is outside {MIN_HEARTBEAT_S:g}..{MAX_HEARTBEAT_S:g}; using {clamped:g}s",
            repr(raw),
        )
    return clamped, None
