"""The append-only change history: one record for every change a producer publishes."""

from __future__ import annotations

from msgspec import Struct

# Every kind of change the history carries. Subscribers filter on these.
CHANGE_KINDS = (
    "task_staging",
    "task_starting",
    "task_running",
    "task_killing",
    "task_finished",
    "task_killed",
    "task_failed",
    "task_lost",
    "task_gone",
    "task_removed",
    "task_health_changed",
    "agent_added",
    "agent_removed",
    "agent_updated",
    "framework_added",
    "framework_updated",
    "framework_removed",
    "leader_changed",
    "app_created",
    "app_updated",
    "app_deleted",
    "app_task_updated",
    "app_task_removed",
    "history_gap",
)


class ChangeEvent(Struct, frozen=True):
    """One change, as a subscriber or an audit tool sees it. Key and ``id``: the key of the
    entity in its table (a Mesos task's is ``<framework id>/<task id>``, and its events carry the
    bare id in ``fields.task_id`` and the framework in ``fields.framework_id``).

    ``entity`` is the catalog alias of the table that changed (``tasks``, ``agents`` …);
    ``fields`` holds the handful of values that make the change readable on its own.

    ``history_gap`` (entity ``cluster``, id = the source, ``mesos`` or ``marathon``): the
    history of that source may be incomplete between two moments, because the producer or
    its stream was down. Its fields:

    - ``from``: wall-clock seconds of the last moment the source was known to be watched (the
      previous producer's last heartbeat in the ``status`` topic, or the last record of the
      stream that broke; its last full sync when it had already lost its stream);
    - ``to``: when the producer was back in sync (also ``observed_at``);
    - ``cause``: ``producer restart``, ``stream lost`` or ``polling failed``;
    - ``reconstructed``: how many events were rebuilt from the master's completed tasks.

    Rebuilt events follow the gap event. They are ordinary task events with
    ``reconstructed: true`` in their fields and the time of the master's status as
    ``observed_at``.
    """

    kind: str
    entity: str
    id: str
    source: str
    observed_at: float
    fields: dict[str, str | int | float | bool | None] = {}
