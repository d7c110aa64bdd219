"""Change history: which ChangeEvent records one table change produces. Pure.

Every producer publishes one history record per real change, so a subscriber sees task
launches, kills, health flips, agents and apps come and go without reading the tables.
"""

from __future__ import annotations

import msgspec

from schemas.history import ChangeEvent
from schemas.marathon import App, AppTask
from schemas.mesos import TERMINAL_STATES, Agent, Cluster, Framework, Task

KIND_BY_TASK_STATE = {
    "TASK_STAGING": "task_staging",
    "TASK_STARTING": "task_starting",
    "TASK_RUNNING": "task_running",
    "TASK_KILLING": "task_killing",
    "TASK_FINISHED": "task_finished",
    "TASK_KILLED": "task_killed",
    "TASK_FAILED": "task_failed",
    "TASK_LOST": "task_lost",
    "TASK_ERROR": "task_failed",
    "TASK_DROPPED": "task_lost",
    "TASK_UNREACHABLE": "task_lost",
    "TASK_GONE": "task_gone",
    "TASK_GONE_BY_OPERATOR": "task_gone",
}


def task_fields(task: Task) -> dict:
    addresses = [ip for status in task.statuses[-1:] for net in status.network_infos for ip in net.ip_addresses]
    return {
        "task_id": task.id,
        "name": task.name,
        "state": task.state,
        "framework_id": task.framework_id,
        "agent_id": task.agent_id,
        "healthy": task.healthy,
        "ips": ",".join(addresses) or None,
    }


def _task_events(old: Task | None, new: Task | None) -> list[tuple[str, dict]]:
    if new is None:
        return [("task_removed", task_fields(old))] if old else []
    events = []
    if old is None or old.state != new.state:
        events.append((KIND_BY_TASK_STATE.get(new.state, "task_" + new.state.lower().removeprefix("task_")), task_fields(new)))
    if old is not None and old.healthy != new.healthy:
        events.append(("task_health_changed", task_fields(new)))
    return events


def _agent_events(old: Agent | None, new: Agent | None) -> list[tuple[str, dict]]:
    entity = new or old
    fields = {"hostname": entity.hostname, "ip": entity.ip, "active": entity.active}
    if new is None:
        return [("agent_removed", fields)]
    return [("agent_added" if old is None else "agent_updated", fields)]


def _framework_events(old: Framework | None, new: Framework | None) -> list[tuple[str, dict]]:
    entity = new or old
    fields = {"name": entity.name, "active": entity.active}
    if new is None:
        return [("framework_removed", fields)]
    return [("framework_added" if old is None else "framework_updated", fields)]


def _cluster_events(old: Cluster | None, new: Cluster | None) -> list[tuple[str, dict]]:
    if new is None or (old is not None and old.leader == new.leader):
        return []
    leader = new.leader
    return [("leader_changed", {"leader": f"{leader.hostname}:{leader.port}", "masters": len(new.masters)})]


def _app_events(old: App | None, new: App | None) -> list[tuple[str, dict]]:
    entity = new or old
    fields = {"instances": entity.instances, "version": entity.version}
    if new is None:
        return [("app_deleted", fields)]
    return [("app_created" if old is None else "app_updated", fields)]


def _app_task_events(old: AppTask | None, new: AppTask | None) -> list[tuple[str, dict]]:
    entity = new or old
    fields = {"app_id": entity.app_id, "state": entity.state, "host": entity.host,
              "alive": _alive(entity)}
    if new is None or new.state in TERMINAL_STATES:
        return [("app_task_removed", fields)]
    events = []
    if old is None or (old.state, old.ports, old.ip_addresses) != (new.state, new.ports, new.ip_addresses):
        events.append(("app_task_updated", fields))
    if old is not None and _alive(old) != _alive(new):
        events.append(("task_health_changed", fields))
    return events


def _alive(task: AppTask) -> bool | None:
    return all(result.alive for result in task.health_check_results) if task.health_check_results else None


_DERIVERS = {
    "tasks": _task_events,
    "agents": _agent_events,
    "frameworks": _framework_events,
    "cluster": _cluster_events,
    "apps": _app_events,
    "app-tasks": _app_task_events,
}


def change_events(
    alias: str, key: str, old: msgspec.Struct | None, new: msgspec.Struct | None, source: str, observed_at: float
) -> list[ChangeEvent]:
    """The history records for one change of table ``alias`` (``old`` -> ``new``; None = absent)."""
    return [
        ChangeEvent(kind=kind, entity=alias, id=key, source=source, observed_at=observed_at, fields=fields)
        for kind, fields in _DERIVERS[alias](old, new)
    ]
