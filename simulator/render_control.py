"""The control API's change list: one stamped entry per model change (pure).

kinds: task_state (a task entered `state`), task_health (only `healthy` changed),
agent_added, agent_removed, framework_added/updated/removed, app_created, app_updated,
app_deleted. Deployment bookkeeping is not a cluster change and gets no entry.
"""

from __future__ import annotations

from typing import Any

from simulator.convert import unwrap
from simulator.model import Change


def stamp(change: Change) -> dict | None:
    """The reply entry for one change (None for deployment bookkeeping)."""
    entry: dict[str, Any] = {"at": change.at}
    kind = change.kind
    if kind in ("task_added", "task_updated"):
        task = change.task
        state_changed = kind == "task_added" or change.previous_state != task["state"]
        entry.update(kind="task_state" if state_changed else "task_health",
                     task_id=unwrap(task["task_id"]), framework_id=unwrap(task["framework_id"]), app_id=change.app_id,
                     agent_id=unwrap(task["agent_id"]), state=task["state"])
        if change.status and "healthy" in change.status:
            entry["healthy"] = change.status["healthy"]
    elif kind in ("agent_added", "agent_removed"):
        info = change.agent["agent_info"]
        entry.update(kind=kind, agent_id=unwrap(info["id"]), hostname=info.get("hostname"))
    elif kind.startswith("framework_"):
        info = change.framework["framework_info"]
        entry.update(kind=kind, framework_id=unwrap(info["id"]), name=info.get("name"))
    elif kind.startswith("app_"):
        entry.update(kind=kind, app_id=change.app_id, instances=change.app.get("instances"))
    else:
        return None
    return entry


def stamps(changes: list[Change]) -> list[dict]:
    return [entry for entry in map(stamp, changes) if entry is not None]
