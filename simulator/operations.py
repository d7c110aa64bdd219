"""What the control API does to the cluster, expressed as model changes.

Each operation validates first and mutates second, so a refused request leaves the
model untouched. Each returns the stamped `Change`s in the order the events go out.
"""

from __future__ import annotations

import re

from typing import Any

from simulator.convert import (DEFAULT_AGENT_PORT, parse_port_ranges, ranges_resource,
                               scalar_resource, seconds_to_time, unwrap, wrap)
from simulator.marathon_apps import (app_id_problem, assign_service_ports, iso, normalize_app_id,
                                     used_service_ports)
from simulator.model import MARATHON, Change, Model, key_of
from simulator.task_builder import NoCapacity, Placement, build_task, new_status_uuid

MESOS_VERSION = "1.9.0"
# The port ranges of a DC/OS agent (everything but the ports DC/OS itself uses).
DEFAULT_PORT_RANGES = [(1025, 2180), (2182, 3887), (3889, 5049), (5052, 8079), (8082, 8180),
                       (8182, 32000)]
# Fields Marathon computes; a posted definition carrying them (a GET echoed back) must
# not make the simulator think the configuration changed.
DERIVED_APP_FIELDS = ("tasks", "tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy",
                      "deployments", "version", "versionInfo", "instances", "lastTaskFailure")


class OperationError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# -- agents and the Marathon framework ------------------------------------------------

def agent_record(model: Model, hostname: str, agent_id: str | None = None,
                 port_ranges: list[tuple[int, int]] | None = None, ip: str | None = None) -> dict:
    resources = [ranges_resource(port_ranges or DEFAULT_PORT_RANGES),
                 scalar_resource("disk", 35566.0), scalar_resource("cpus", 4.0),
                 scalar_resource("mem", 14021.0)]
    now = seconds_to_time(model.clock())
    return {
        "agent_info": {"hostname": hostname, "port": DEFAULT_AGENT_PORT, "resources": resources,
                       "id": wrap(agent_id or model.next_agent_id())},
        "active": True,
        "version": MESOS_VERSION,
        "pid": f"slave(1)@{ip or hostname}:{DEFAULT_AGENT_PORT}",
        "registered_time": now,
        "total_resources": [dict(r, role="*") for r in resources],
        "capabilities": [{"type": t} for t in ("MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT")],
    }


def marathon_framework(model: Model, hostname: str = "localhost") -> dict:
    now = seconds_to_time(model.clock())
    return {
        "framework_info": {
            "user": "root", "name": MARATHON, "id": wrap(model.next_framework_id()),
            "failover_timeout": 604800.0, "checkpoint": True, "role": "*", "hostname": hostname,
            "principal": "marathon",
            "capabilities": [{"type": t} for t in ("TASK_KILLING_STATE", "PARTITION_AWARE")],
        },
        "active": True, "connected": True, "recovered": False,
        "registered_time": now, "reregistered_time": now,
    }


def ensure_marathon(model: Model) -> tuple[str, list[Change]]:
    for framework_id in model.marathon_framework_ids():
        if model.frameworks[framework_id].get("active", True):
            return framework_id, []
    framework = marathon_framework(model)
    return unwrap(framework["framework_info"]["id"]), model.upsert_framework(framework)


def add_agent(model: Model, body: dict) -> list[Change]:
    hostname = body.get("hostname")
    agent_id = body.get("id")
    if agent_id is not None and not isinstance(agent_id, str):
        raise OperationError(400, "'id' must be a string")
    if agent_id in model.agents:
        raise OperationError(400, f"agent {agent_id} is already registered")
    recovered = model.recovered_agents.get(agent_id or "")
    hostname = hostname or (recovered or {}).get("hostname")
    if not isinstance(hostname, str) or not hostname:
        raise OperationError(400, "agent needs a 'hostname'")
    ranges = body.get("port_ranges")
    if isinstance(ranges, str):
        ranges = parse_port_ranges(ranges)
    elif ranges is not None:
        try:
            ranges = [(int(b), int(e)) for b, e in ranges]
        except (TypeError, ValueError):
            raise OperationError(400, "'port_ranges' must be like [[31000, 32000]] or '[31000-32000]'")
    return model.add_agent(agent_record(model, hostname, agent_id, ranges, body.get("ip")))


def remove_agent(model: Model, agent_id: str) -> list[Change]:
    if agent_id not in model.agents:
        raise OperationError(404, f"agent {agent_id} does not exist")
    changes: list[Change] = []
    for task in model.agent_tasks(agent_id):
        framework = model.frameworks.get(unwrap(task["framework_id"]), {})
        capabilities = {c.get("type") for c in framework.get("framework_info", {}).get("capabilities", [])}
        state = "TASK_GONE" if "PARTITION_AWARE" in capabilities else "TASK_LOST"
        status = _status(model, task, state, source="SOURCE_MASTER", reason="REASON_AGENT_REMOVED",
                         message=f"Agent {agent_id} removed")
        changes += model.update_task(key_of(task), status)
    return changes + model.remove_agent(agent_id)


# -- task status updates --------------------------------------------------------------

def _status(model: Model, task: dict, state: str, keep_container: bool = True, **fields: Any) -> dict:
    last = (task.get("statuses") or [{}])[-1]
    status: dict[str, Any] = {"task_id": task["task_id"], "state": state,
                              "source": fields.pop("source", "SOURCE_EXECUTOR"),
                              "agent_id": task["agent_id"]}
    status.update({k: v for k, v in fields.items() if v is not None})
    if "executor_id" in last:
        status["executor_id"] = last["executor_id"]
    status["timestamp"] = model.clock()
    status["uuid"] = new_status_uuid(model)
    if keep_container and "container_status" in last:
        status["container_status"] = last["container_status"]
    return status


def find_task(model: Model, task_id: str, framework_id: str | None = None) -> str:
    """The key of an active task named by its id (and framework, when the id is ambiguous)."""
    try:
        return model.find_task(task_id, framework_id)
    except LookupError as problem:
        ambiguous = "frameworks" in str(problem)
        raise OperationError(409 if ambiguous else 404, str(problem)) from None


def kill_task(model: Model, key: str, scale: bool = False) -> list[Change]:
    """TASK_KILLING, then TASK_KILLED, for the active task with this key (``key_of``)."""
    task = model.tasks[key]
    changes = model.update_task(key, _status(model, task, "TASK_KILLING"))
    task = model.tasks[key]
    changes += model.update_task(key, _status(
        model, task, "TASK_KILLED", message="Command terminated with signal Terminated"))
    app_id = changes[0].app_id
    if scale and app_id in model.apps:
        app = model.apps[app_id]
        changes += _rescale(model, app, max(0, app.get("instances", 1) - 1), {})
    return changes


def fail_task(model: Model, key: str) -> list[Change]:
    task = model.tasks[key]
    return model.update_task(key, _status(model, task, "TASK_FAILED", reason="REASON_COMMAND_EXECUTOR_FAILED",
                                              message="Command exited with status 1"))


def health_body(body: Any) -> bool:
    """The ``healthy`` of a health change request body."""
    healthy = body.get("healthy") if isinstance(body, dict) else None
    if not isinstance(healthy, bool):
        raise OperationError(400, "body must be {\"healthy\": true|false}")
    return healthy


def set_health(model: Model, key: str, healthy: bool) -> list[Change]:
    task = model.tasks[key]
    if task["state"] != "TASK_RUNNING":
        raise OperationError(400, f"task {unwrap(task['task_id'])} is {task['state']}, not TASK_RUNNING")
    status = _status(model, task, "TASK_RUNNING", reason="REASON_TASK_HEALTH_CHECK_STATUS_UPDATED",
                     healthy=healthy)
    return model.update_task(key, status)


# -- Marathon apps ---------------------------------------------------------------------

def _hostname(agent: dict) -> str:
    return (agent.get("agent_info") or agent).get("hostname", "")


def meets_constraints(app: dict, hostname: str) -> bool:
    """Marathon's hostname constraints: ``["hostname", "LIKE"|"UNLIKE", regex]`` and
    ``["hostname", "CLUSTER", value]``; other fields and operators are not simulated."""
    for constraint in app.get("constraints") or []:
        if not isinstance(constraint, list) or len(constraint) < 2 or constraint[0] != "hostname":
            continue
        operator, value = constraint[1], constraint[2] if len(constraint) > 2 else ""
        if operator == "LIKE" and not re.fullmatch(value, hostname):
            return False
        if operator == "UNLIKE" and re.fullmatch(value, hostname):
            return False
        if operator == "CLUSTER" and value and hostname != value:
            return False
    return True


def plan_launch(model: Model, app: dict, count: int, framework_id: str) -> list[tuple[dict, dict]]:
    """Place `count` new tasks round-robin over the active agents that meet the app's
    hostname constraints, or raise."""
    agents = [a for a, record in model.agents.items() if record.get("active", True)
              and meets_constraints(app, _hostname(record))]
    if count and not agents:
        raise OperationError(400, "no agents to launch tasks on; POST /sim/agents first, or relax the constraints")
    placement = Placement(model)
    planned = []
    cursor = model.round_robin
    for _ in range(count):
        for attempt in range(len(agents)):
            agent_id = agents[(cursor + attempt) % len(agents)]
            try:
                planned.append(build_task(model, app, agent_id, framework_id, placement))
            except NoCapacity:
                continue
            cursor += attempt + 1
            break
        else:
            raise OperationError(400, f"no agent has the host ports app {app['id']} needs")
    model.round_robin = cursor
    return planned


def apply_launch(model: Model, app: dict, planned: list[tuple[dict, dict]]) -> list[Change]:
    """Each task: TASK_ADDED (staging), then TASK_UPDATED (running) at once."""
    changes: list[Change] = []
    for task, status in planned:
        changes += model.add_task(task, meta={"app_id": app["id"], "version": app.get("version")})
        changes += model.update_task(key_of(task), dict(status, timestamp=model.clock()))
    return changes


def _rescale(model: Model, app: dict, instances: int, source: dict) -> list[Change]:
    """Record the new instance count, then launch or kill (newest first) to match it."""
    now = iso(model.clock())
    version_info = dict(app.get("versionInfo") or {}, lastScalingAt=now)
    version_info.setdefault("lastConfigChangeAt", app.get("version") or now)
    updated = dict(app, instances=instances, version=now, versionInfo=version_info)
    running = model.app_tasks(app["id"])
    framework_id, changes = ensure_marathon(model)
    planned = plan_launch(model, updated, instances - len(running), framework_id) if instances > len(running) else []
    changes += model.put_app(updated, extra=source)
    changes += apply_launch(model, updated, planned)
    for task in reversed(running[instances:]):
        changes += kill_task(model, key_of(task))
    return changes + model.deployment(app["id"], "ScaleApplication", app, updated)


def put_app(model: Model, definition: Any, source: dict) -> list[Change]:
    """POST /sim/apps: create, rescale, or (config changed) replace every task."""
    if not isinstance(definition, dict):
        raise OperationError(400, "body must be a Marathon app definition (a JSON object)")
    problem = app_id_problem(definition.get("id"))
    if problem:
        raise OperationError(400, problem)
    instances = definition.get("instances", 1)
    if not isinstance(instances, int) or isinstance(instances, bool) or instances < 0:
        raise OperationError(400, "'instances' must be a non-negative integer")
    app_id = normalize_app_id(definition["id"])
    existing = model.apps.get(app_id)
    others = {k: v for k, v in model.apps.items() if k != app_id}
    config = {k: v for k, v in definition.items() if k not in DERIVED_APP_FIELDS}
    config = assign_service_ports(dict(config, id=app_id), used_service_ports(others))
    if existing is not None and config == {k: v for k, v in existing.items() if k not in DERIVED_APP_FIELDS}:
        return _rescale(model, existing, instances, source)
    now = iso(model.clock())
    app = dict(config, instances=instances, version=now,
               versionInfo={"lastScalingAt": now, "lastConfigChangeAt": now})
    framework_id, changes = ensure_marathon(model)
    old_tasks = model.app_tasks(app_id)
    planned = plan_launch(model, app, instances, framework_id)
    changes += model.put_app(app, extra=source)
    # Marathon's default upgrade: start the new version, then stop the old one.
    changes += apply_launch(model, app, planned)
    for task in old_tasks:
        changes += kill_task(model, key_of(task))
    action = "RestartApplication" if existing else "StartApplication"
    return changes + model.deployment(app_id, action, existing, app)


def scale_app(model: Model, app_id: str, instances: Any, source: dict) -> list[Change]:
    app_id = normalize_app_id(app_id)
    if app_id not in model.apps:
        raise OperationError(404, f"App '{app_id}' does not exist")
    try:
        instances = int(instances)
    except (TypeError, ValueError):
        raise OperationError(400, f"instances must be an integer, not {instances!r}")
    if instances < 0:
        raise OperationError(400, "instances must not be negative")
    return _rescale(model, model.apps[app_id], instances, source)


def delete_app(model: Model, app_id: str) -> list[Change]:
    app_id = normalize_app_id(app_id)
    if app_id not in model.apps:
        raise OperationError(404, f"App '{app_id}' does not exist")
    changes: list[Change] = []
    for task in model.app_tasks(app_id):
        changes += kill_task(model, key_of(task))
    app = model.apps[app_id]
    changes += model.remove_app(app_id)
    return changes + model.deployment(app_id, "StopApplication", app, None)
