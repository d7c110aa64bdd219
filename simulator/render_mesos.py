"""Mesos master documents and events, rendered from the model (pure).

Shapes follow Mesos 1.x: the legacy `/master/state` JSON, the v1 operator API
(GET_STATE, SUBSCRIBED and the events after it), and RecordIO framing. Empty repeated
fields are left out of v1 messages, as protobuf's JSON mapping does (the fixtures show
`"get_tasks": {}` for a cluster without tasks).
"""

from __future__ import annotations

from typing import Any

import orjson

from schemas.addresses import canonical_ip

from simulator.convert import pid_address, resources_to_legacy, task_to_legacy, unwrap
from simulator.convert_cluster import agent_info_to_legacy, agent_to_legacy, framework_to_legacy
from simulator.model import TERMINAL_STATES, Change, Model

DEFAULT_VERSION = "1.9.0"
HEARTBEAT = {"type": "HEARTBEAT"}


def dumps(document: Any) -> bytes:
    return orjson.dumps(document)


def recordio(record: bytes) -> bytes:
    """RecordIO: '<decimal byte length>\\n<record>'."""
    return str(len(record)).encode() + b"\n" + record


def _non_empty(**fields: list) -> dict:
    return {key: value for key, value in fields.items() if value}


# -- v1 operator API ---------------------------------------------------------------------

def get_tasks(model: Model) -> dict:
    active = list(model.tasks.values())
    return _non_empty(
        tasks=[t for t in active if t["state"] not in TERMINAL_STATES and t["state"] != "TASK_UNREACHABLE"],
        unreachable_tasks=[t for t in active if t["state"] == "TASK_UNREACHABLE"],
        completed_tasks=model.completed(),
    )


def get_agents(model: Model) -> dict:
    return _non_empty(agents=list(model.agents.values()),
                      recovered_agents=list(model.recovered_agents.values()))


def get_frameworks(model: Model) -> dict:
    return _non_empty(frameworks=list(model.frameworks.values()),
                      completed_frameworks=list(model.completed_frameworks.values()))


def get_executors(model: Model) -> dict:
    return _non_empty(executors=model.executors)


def get_state(model: Model) -> dict:
    return {"get_tasks": get_tasks(model), "get_executors": get_executors(model),
            "get_frameworks": get_frameworks(model), "get_agents": get_agents(model)}


def subscribed(model: Model, heartbeat_interval: float) -> dict:
    return {"type": "SUBSCRIBED",
            "subscribed": {"get_state": get_state(model), "heartbeat_interval_seconds": heartbeat_interval}}


def get_master(model: Model) -> dict:
    """The master as it advertises itself: the loaded state's master (its PID, hostname and
    port), which is not the address the simulator listens on."""
    master = model.master
    host, pid_port = pid_address(master.get("pid"))
    port = master.get("port") or pid_port or 5050
    address = {"hostname": master.get("hostname") or host, "port": port}
    if canonical_ip(host) is not None:
        address["ip"] = host
    return {"type": "GET_MASTER", "get_master": {"master_info": {
        "id": model.master_id(), "pid": master.get("pid"), "port": port,
        "hostname": master.get("hostname"), "version": master.get("version") or DEFAULT_VERSION,
        "address": address,
    }}}


def call_reply(model: Model, call_type: str) -> dict | None:
    """The reply to a non-streaming v1 call, or None when the call is not supported."""
    parts = {"GET_TASKS": get_tasks, "GET_AGENTS": get_agents, "GET_FRAMEWORKS": get_frameworks,
             "GET_EXECUTORS": get_executors, "GET_STATE": get_state}
    if call_type in parts:
        return {"type": call_type, call_type.lower(): parts[call_type](model)}
    if call_type == "GET_MASTER":
        return get_master(model)
    if call_type == "GET_VERSION":
        version = model.master.get("version") or DEFAULT_VERSION
        return {"type": "GET_VERSION", "get_version": {"version_info": {"version": version}}}
    if call_type == "GET_HEALTH":
        return {"type": "GET_HEALTH", "get_health": {"healthy": True}}
    return None


def event(change: Change) -> dict | None:
    """The SUBSCRIBE event for one model change (None: Marathon-only changes)."""
    kind = change.kind
    if kind == "task_added":
        return {"type": "TASK_ADDED", "task_added": {"task": change.task}}
    if kind == "task_updated":
        return {"type": "TASK_UPDATED", "task_updated": {
            "framework_id": change.task["framework_id"], "status": change.status,
            "state": change.task["state"]}}
    if kind == "agent_added":
        return {"type": "AGENT_ADDED", "agent_added": {"agent": change.agent}}
    if kind == "agent_removed":
        return {"type": "AGENT_REMOVED", "agent_removed": {"agent_id": change.agent["agent_info"]["id"]}}
    if kind in ("framework_added", "framework_updated"):
        return {"type": kind.upper(), kind: {"framework": change.framework}}
    if kind == "framework_removed":
        return {"type": "FRAMEWORK_REMOVED",
                "framework_removed": {"framework_info": change.framework["framework_info"]}}
    return None


def event_records(changes: list[Change]) -> bytes:
    """All Mesos events of a batch, each RecordIO-framed, as one write."""
    return b"".join(recordio(dumps(e)) for e in map(event, changes) if e is not None)


# -- legacy /master/state -----------------------------------------------------------------

def _used_resources(model: Model, agent_id: str) -> dict:
    resources = [r for t in model.agent_tasks(agent_id) for r in t.get("resources", [])]
    return resources_to_legacy(resources)


def master_frameworks(model: Model) -> dict:
    """The legacy ``/master/frameworks`` document: the frameworks of ``/master/state`` (with
    the scheduler PIDs only the legacy endpoints carry), without the rest of the state."""
    state = master_state(model)
    return {key: state.get(key, []) for key in ("frameworks", "completed_frameworks", "unregistered_frameworks")}


def master_state(model: Model) -> dict:
    master = model.master
    by_framework: dict[str, list[dict]] = {}
    for task in model.tasks.values():
        by_framework.setdefault(unwrap(task["framework_id"]), []).append(task)
    known = set(model.frameworks) | set(model.completed_frameworks)
    state: dict[str, Any] = {
        "version": master.get("version") or DEFAULT_VERSION,
        "id": model.master_id(),
        "pid": master.get("pid"),
        "hostname": master.get("hostname"),
    }
    if master.get("leader"):
        state["leader"] = master["leader"]
        state["leader_info"] = {"id": model.master_id(), "pid": master["leader"],
                                "hostname": master.get("hostname"), "port": master.get("port", 5050)}
    for key in ("cluster", "start_time", "elected_time"):
        if key in master:
            state[key] = master[key]
    state.update({
        "activated_slaves": sum(1 for a in model.agents.values() if a.get("active", True)),
        "deactivated_slaves": sum(1 for a in model.agents.values() if not a.get("active", True)),
        "slaves": [agent_to_legacy(a, _used_resources(model, aid)) for aid, a in model.agents.items()],
        "frameworks": [framework_to_legacy(fw, by_framework.get(fid, []), list(model.completed_tasks.get(fid, [])),
                                           model.framework_pids.get(fid))
                       for fid, fw in model.frameworks.items()],
        "completed_frameworks": [framework_to_legacy(fw, [], list(model.completed_tasks.get(fid, [])),
                                                     model.framework_pids.get(fid))
                                 for fid, fw in model.completed_frameworks.items()],
        "orphan_tasks": [task_to_legacy(t) for fid, tasks in by_framework.items() if fid not in known
                         for t in tasks],
        "unregistered_frameworks": [],
    })
    if model.recovered_agents:
        state["recovered_slaves"] = [agent_info_to_legacy(i) for i in model.recovered_agents.values()]
    return state
