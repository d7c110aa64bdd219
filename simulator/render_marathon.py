"""Marathon documents and SSE events, derived from the model's Mesos tasks (pure).

Marathon's view is never stored separately: an app's tasks are the active Mesos tasks
of the "marathon" framework that belong to it, so both APIs always agree.
"""

from __future__ import annotations

from typing import Any

import orjson

from simulator.convert import resource_ports, unwrap
from simulator.marathon_apps import instance_id, iso, service_ports
from simulator.model import Change, Model, key_of

STAGED_STATES = ("TASK_STAGING", "TASK_STARTING")


def sse(event_type: str, data: dict) -> bytes:
    """Marathon's SSE framing: one event line, one single-line data line, a blank line."""
    return b"event: " + event_type.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


KEEP_ALIVE = b":\n\n"


def host_ports(task: dict) -> list[int]:
    """The task's host ports in port order (what Marathon lists as `ports`)."""
    container = task.get("container") or {}
    mappings = (container.get("docker") or {}).get("port_mappings") or [
        m for n in container.get("network_infos", []) for m in n.get("port_mappings", [])]
    ordered: list[int] = []
    if mappings:
        ordered = [m["host_port"] for m in mappings if m.get("host_port")]
    else:
        for port in (task.get("discovery") or {}).get("ports", {}).get("ports", []):
            labels = {l.get("key"): l.get("value") for l in port.get("labels", {}).get("labels", [])}
            if labels.get("network-scope") != "container" and port.get("number"):
                ordered.append(port["number"])
        if not ordered and not (task.get("discovery") or {}).get("ports"):
            ordered = resource_ports(task.get("resources"))
    return list(dict.fromkeys(ordered))


def ip_addresses(task: dict) -> list[dict]:
    protocols = {}
    for status in reversed(task.get("statuses", [])):
        for info in status.get("container_status", {}).get("network_infos", []):
            for address in info.get("ip_addresses", []):
                if address.get("ip_address"):
                    protocols.setdefault(address["ip_address"], address.get("protocol", "IPv4"))
        if protocols:
            break
    return [{"ipAddress": ip, "protocol": protocol} for ip, protocol in protocols.items()]


def health_results(task_id: str, meta: dict, app: dict | None) -> list[dict] | None:
    health = meta.get("health")
    if not health or "alive" not in health:
        return [] if (app or {}).get("healthChecks") else None
    return [{"alive": health["alive"], "consecutiveFailures": health.get("consecutiveFailures", 0),
             "firstSuccess": iso(health.get("firstSuccess")), "lastFailure": iso(health.get("lastFailure")),
             "lastSuccess": iso(health.get("lastSuccess")), "taskId": task_id}]


def marathon_task(model: Model, task: dict) -> dict:
    """A Mesos task of the marathon framework as Marathon 1.x lists it."""
    task_id = unwrap(task["task_id"])
    meta = model.task_meta.get(key_of(task), {})
    app = model.apps.get(meta.get("app_id"))
    result: dict[str, Any] = {
        "id": task_id,
        "appId": meta.get("app_id"),
        "host": meta.get("host"),
        "slaveId": unwrap(task["agent_id"]),
        "ports": host_ports(task),
        "servicePorts": service_ports(app) if app else [],
        "ipAddresses": ip_addresses(task),
        "state": task["state"],
        "stagedAt": iso(meta.get("staged_at")),
        "startedAt": iso(meta.get("started_at")),
        "version": meta.get("version"),
        "localVolumes": [],
    }
    results = health_results(task_id, meta, app)
    if results is not None:
        result["healthCheckResults"] = results
    return result


def app_document(model: Model, app: dict, embed_tasks: bool, tasks: list[dict] | None = None) -> dict:
    """`tasks`: the app's active tasks when the caller has them already (model.tasks_by_app)."""
    tasks = model.app_tasks(app["id"]) if tasks is None else tasks
    health = [model.task_meta.get(key_of(t), {}).get("health", {}).get("alive") for t in tasks]
    document = dict(app)
    document.update({
        "tasksStaged": sum(1 for t in tasks if t["state"] in STAGED_STATES),
        "tasksRunning": sum(1 for t in tasks if t["state"] == "TASK_RUNNING"),
        "tasksHealthy": sum(1 for h in health if h is True),
        "tasksUnhealthy": sum(1 for h in health if h is False),
        "deployments": [],
    })
    if embed_tasks:
        document["tasks"] = [marathon_task(model, t) for t in tasks]
    return document


def apps_document(model: Model, embed_tasks: bool) -> dict:
    tasks = model.tasks_by_app()
    return {"apps": [app_document(model, app, embed_tasks, tasks.get(app_id, [])) for app_id, app in model.apps.items()]}


# -- the event bus ------------------------------------------------------------------------

def attached(remote: str, at: float, detached: bool = False) -> tuple[str, dict]:
    kind = "event_stream_detached" if detached else "event_stream_attached"
    return kind, {"remoteAddress": remote, "eventType": kind, "timestamp": iso(at)}


def _group(app: dict | None, at: float) -> dict:
    return {"id": "/", "apps": [app] if app else [], "groups": [], "dependencies": [], "version": iso(at)}


def events(change: Change) -> list[tuple[str, dict]]:
    """The Marathon events for one model change (none for non-Marathon changes)."""
    at = iso(change.at)
    kind = change.kind
    if kind in ("task_added", "task_updated") and change.meta is not None:
        task, meta = change.task, change.meta
        task_id = unwrap(task["task_id"])
        result = []
        if kind == "task_added" or change.previous_state != task["state"]:
            status = change.status or {}
            result.append(("status_update_event", {
                "slaveId": unwrap(task["agent_id"]), "taskId": task_id, "taskStatus": task["state"],
                "message": status.get("message", ""), "appId": meta["app_id"], "host": meta.get("host"),
                "ipAddresses": ip_addresses(task), "ports": host_ports(task), "version": meta.get("version"),
                "eventType": "status_update_event", "timestamp": at}))
        if change.health_changed:
            result.append(("health_status_changed_event", {
                "appId": meta["app_id"], "taskId": task_id, "instanceId": instance_id(task_id),
                "version": meta.get("version"), "alive": bool(change.status.get("healthy")),
                "eventType": "health_status_changed_event", "timestamp": at}))
        return result
    if kind in ("app_created", "app_updated"):
        return [("api_post_event", {
            "clientIp": change.extra.get("client_ip"), "uri": change.extra.get("uri", f"/v2/apps{change.app_id}"),
            "appDefinition": change.app, "eventType": "api_post_event", "timestamp": at})]
    if kind == "app_deleted":
        return [("app_terminated_event", {"appId": change.app_id, "eventType": "app_terminated_event",
                                          "timestamp": at})]
    if kind == "deployment_success":
        extra = change.extra
        plan = {"id": extra["id"], "original": _group(extra["original"], change.at),
                "target": _group(extra["target"], change.at),
                "steps": [{"actions": [{"action": extra["action"], "app": change.app_id}]}],
                "version": at}
        return [("deployment_success", {"id": extra["id"], "plan": plan, "eventType": "deployment_success",
                                        "timestamp": at})]
    return []
