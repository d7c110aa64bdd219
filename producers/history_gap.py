"""History across an outage: the gap record, and what the master's memory can fill in. Pure.

While the producer (or its stream) was down, nobody recorded changes. At the next full sync
the diff repairs the tables, but tasks that launched and ended in between left no trace in
them. The Mesos master keeps its completed tasks with their statuses, so their history is
rebuilt from those; and one ``history_gap`` event says which span may still be incomplete
(Marathon has no such memory, and the master's is bounded).
"""

from __future__ import annotations

from dataclasses import dataclass

from producers.history import KIND_BY_TASK_STATE, task_fields
from schemas.history import ChangeEvent
from schemas.mesos import Task

GAP_ENTITY = "cluster"


@dataclass(frozen=True)
class Gap:
    """Changes since ``since`` (wall-clock seconds) may not have been seen, because of ``cause``."""

    since: float
    cause: str


def gap_event(source: str, gap: Gap, until: float, reconstructed: int) -> ChangeEvent:
    """The ``history_gap`` record: see ChangeEvent for its fields."""
    return ChangeEvent(
        kind="history_gap",
        entity=GAP_ENTITY,
        id=source,
        source=source,
        observed_at=until,
        fields={"from": gap.since, "to": until, "cause": gap.cause, "reconstructed": reconstructed},
    )


def reconstructed_task_events(
    completed: dict[str, Task], known: dict[str, Task | None], gap: Gap, until: float, source: str = "mesos"
) -> list[ChangeEvent]:
    """One event per status of an ended task that falls inside the gap, oldest first.

    ``known`` is what the tasks table holds: statuses up to its newest one were published
    already, so only later ones are rebuilt. Each event is stamped with the time in the
    master's status and carries ``reconstructed: true``.
    """
    events = []
    for task in completed.values():
        seen = known.get(task.key)
        published_until = max((s.timestamp for s in seen.statuses), default=gap.since) if seen else gap.since
        start = max(gap.since, published_until)
        for status in task.statuses:
            if start < status.timestamp <= until:
                fields = dict(task_fields(task), state=status.state, reconstructed=True)
                kind = KIND_BY_TASK_STATE.get(status.state, "task_" + status.state.lower().removeprefix("task_"))
                events.append(
                    ChangeEvent(kind=kind, entity="tasks", id=task.key, source=source, observed_at=status.timestamp, fields=fields)
                )
    return sorted(events, key=lambda e: (e.observed_at, e.id))
