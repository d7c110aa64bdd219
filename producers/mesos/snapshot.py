"""Whole-cluster snapshots: a SUBSCRIBED/GET_STATE ``get_state`` or a legacy ``/master/state``. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from producers.mesos.normalize import (
    agent_of,
    framework_of,
    ip_or_none,
    parse_pid,
    task_of,
    value_of,
)
from producers.problems import InputRejected, Problems
from schemas.mesos import TERMINAL_STATES, Agent, Framework, Master, Task


@dataclass
class Snapshot:
    agents: dict[str, Agent] = field(default_factory=dict)
    frameworks: dict[str, Framework] = field(default_factory=dict)
    tasks: dict[str, Task] = field(default_factory=dict)
    # Agents a newly elected master knows from its registry but that have not re-registered
    # yet: their tasks are missing from the snapshot although they still run.
    recovered_agent_ids: set[str] = field(default_factory=set)


def _collect(items: object, parse, into: dict, problems: Problems) -> None:
    for raw in items if isinstance(items, list) else []:
        try:
            entity = parse(raw)
        except InputRejected as problem:
            problems.found.append(problem)
            continue
        if getattr(entity, "state", None) not in TERMINAL_STATES:
            into[entity.id] = entity


def snapshot_of_get_state(get_state: object, problems: Problems) -> Snapshot:
    """From the v1 ``get_state`` object of SUBSCRIBED or GET_STATE."""
    if not isinstance(get_state, dict):
        raise InputRejected("get-state", "get_state must be a JSON object", get_state)
    snapshot = Snapshot()
    agents = get_state.get("get_agents") or {}
    _collect(agents.get("agents"), agent_of, snapshot.agents, problems)
    for recovered in agents.get("recovered_agents") or []:
        agent_id = value_of(recovered.get("id")) if isinstance(recovered, dict) else None
        if agent_id and agent_id not in snapshot.agents:
            snapshot.recovered_agent_ids.add(agent_id)
    _collect((get_state.get("get_frameworks") or {}).get("frameworks"), framework_of, snapshot.frameworks, problems)
    tasks = get_state.get("get_tasks") or {}
    for group in ("tasks", "launched_tasks"):  # the agent API calls them launched_tasks
        _collect(tasks.get(group), lambda raw: task_of(raw, problems), snapshot.tasks, problems)
    return snapshot


def parse_master_state(body: bytes) -> tuple[Snapshot, Master, Problems]:
    """A legacy ``/master/state`` document -> snapshot, leading master and partial problems."""
    text = body.lstrip()
    if text.startswith(b"//"):
        raise InputRejected(
            "master-state", "starts with // comment lines (a browser export), not a Mesos master reply", body
        )
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InputRejected("master-state", f"malformed JSON: {error}", body) from None
    if not isinstance(doc, dict):
        raise InputRejected("master-state", "the state must be a JSON object", body)
    leader = parse_pid(doc.get("leader"))
    if not leader:
        raise InputRejected("master-state", "the state names no leader (a master without leadership, or an agent state)", body)
    problems = Problems()
    snapshot = Snapshot()
    _collect(doc.get("slaves"), agent_of, snapshot.agents, problems)
    for recovered in doc.get("recovered_slaves") or []:
        agent_id = value_of(recovered.get("id")) if isinstance(recovered, dict) else None
        if agent_id and agent_id not in snapshot.agents:
            snapshot.recovered_agent_ids.add(agent_id)
    _collect(doc.get("frameworks"), framework_of, snapshot.frameworks, problems)
    for framework in doc.get("frameworks") or []:
        if isinstance(framework, dict):
            framework_id = value_of(framework.get("id"))
            _collect(framework.get("tasks"), lambda raw: task_of(raw, problems, framework_id), snapshot.tasks, problems)
    leader_info = doc.get("leader_info") or {}
    hostname = leader_info.get("hostname") or leader[0]
    return snapshot, Master(hostname=hostname, ip=ip_or_none(leader[0]), port=leader[1]), problems
