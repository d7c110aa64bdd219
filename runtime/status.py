"""The readiness marks read back: is the upstream alive, and how does it look. Pure.

Readers of the status topic (runtime.kafka.status) hand the newest mark per key to these
functions: `upstream_problems` is what a node logs when its upstream goes stale (it keeps
serving its last good state meanwhile), `status_rows` / `status_lines` are what
`wayfinder status` prints.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from schemas.status import PROCESSOR_KEY, STALE_AFTER_S, Mark, producer_key

# Source records the processor has not reflected yet beyond which it counts as behind.
LAG_BEHIND = 10_000

# The marks every pipeline should have, in the order they are shown.
EXPECTED_KEYS = (producer_key("mesos"), producer_key("marathon"), PROCESSOR_KEY)


@dataclass(frozen=True)
class StatusRow:
    key: str
    role: str | None  # None: no mark under this key
    instance: str | None = None
    in_sync: bool | None = None
    ready: bool | None = None  # the processor's only: every output ready
    synced_at: float | None = None
    heartbeat_age_s: float | None = None
    lag: int | None = None  # the processor's only
    stale: bool = False
    ready_outputs: list[str] | None = None  # the processor's only
    waiting: dict[str, list[str]] | None = None  # the processor's only: output -> producers it waits for


def status_rows(marks: Mapping[str, Mark], now: float, waiting: Mapping[str, list[str]] | None = None) -> list[StatusRow]:
    """One row per expected key (a missing mark too), then any other keys found. `waiting`:
    each output the processor is not ready for -> the producers it waits for
    (processors.readiness.outputs_waiting)."""
    keys = [*EXPECTED_KEYS, *sorted(k for k in marks if k not in EXPECTED_KEYS)]
    rows = []
    for key in keys:
        mark = marks.get(key)
        if mark is None:
            rows.append(StatusRow(key, None))
            continue
        processor = mark.role == "processor"
        age = max(now - mark.heartbeat_at, 0.0)
        rows.append(StatusRow(key, mark.role, mark.instance, mark.in_sync, mark.ready if processor else None,
                              mark.synced_at, round(age, 1), mark.lag if processor else None, age > STALE_AFTER_S,
                              list(mark.ready_outputs) if processor else None,
                              dict(waiting or {}) if processor else None))
    return rows


def status_lines(marks: Mapping[str, Mark], now: float, waiting: Mapping[str, list[str]] | None = None) -> list[str]:
    """`wayfinder status`: one line per mark. A processor ready for some outputs only is
    ``partly ready``, with ``ready=`` the outputs it is ready for and ``waiting=`` what each
    other output waits for (``haproxy:producer/marathon``; ``processor`` when its producers
    are synced and the processor has yet to mark it)."""
    lines = []
    for row in status_rows(marks, now, waiting):
        if row.role is None:
            lines.append(f"{row.key:<18} no mark")
            continue
        state = _processor_state(row) if row.ready is not None else ("in sync" if row.in_sync else "not in sync")
        parts = [f"{row.key:<18}", f"{state:<12}", f"instance={row.instance}",
                 f"synced_at={_clock(row.synced_at)}", f"heartbeat={row.heartbeat_age_s:.1f}s ago"]
        if row.lag is not None:
            parts.append(f"lag={row.lag}")
        if not row.ready and row.ready_outputs:
            parts.append(f"ready={','.join(row.ready_outputs)}")
        if not row.ready and row.waiting:
            parts.append("waiting=" + ",".join(f"{output}:{'+'.join(producers) or 'processor'}"
                                               for output, producers in row.waiting.items()))
        if row.stale:
            parts.append("STALE")
        lines.append(" ".join(parts))
    return lines


def status_json(marks: Mapping[str, Mark], now: float, waiting: Mapping[str, list[str]] | None = None) -> list[dict]:
    return [asdict(row) for row in status_rows(marks, now, waiting)]


def upstream_problems(marks: Mapping[str, Mark], now: float, lag_behind: int = LAG_BEHIND) -> list[str]:
    """Why the upstream cannot be trusted to be current, or [] when it can: a mark older than
    STALE_AFTER_S (its writer is silent), no processor mark, a processor far behind. The
    reasons carry no changing numbers, so the same trouble reads the same on every check."""
    problems = []
    for key, mark in sorted(marks.items()):
        if now - mark.heartbeat_at > STALE_AFTER_S:
            problems.append(f"{key} silent for over {STALE_AFTER_S:.0f}s")
    processor = marks.get(PROCESSOR_KEY)
    if processor is None:
        problems.append("no processor mark")
    elif processor.lag > lag_behind:
        problems.append(f"processor more than {lag_behind} source records behind")
    return problems


class UpstreamLog:
    """Logs the upstream's health once per transition (stale, still stale but for other
    reasons, healthy again), never once per check."""

    def __init__(self, log: logging.Logger, what: str) -> None:
        self.log, self.what = log, what
        self.problems: list[str] = []

    def check(self, marks: Mapping[str, Mark], now: float) -> list[str]:
        problems = upstream_problems(marks, now)
        if problems != self.problems:
            if problems:
                self.log.warning("%s: upstream stale, serving the last good state: %s", self.what, "; ".join(problems))
            else:
                self.log.info("%s: upstream current again", self.what)
            self.problems = problems
        return problems


def _processor_state(row: StatusRow) -> str:
    if row.ready:
        return "ready"
    return "partly ready" if row.ready_outputs else "not ready"


def _clock(at: float | None) -> str:
    if at is None:
        return "-"
    return datetime.datetime.fromtimestamp(at, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
