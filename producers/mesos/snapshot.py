"""Whole-cluster snapshots: a SUBSCRIBED/GET_STATE ``get_state`` or a legacy ``/master/state``. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from producers.mesos.normalize import (
    agent_of,
    framework_of,
    parse_pid,
    task_of,
    value_of,
)
from producers.problems import InputRejected, Problems, parse_entity, unreadable_ids
from schemas.addresses import canonical_ip
from schemas.mesos import TERMINAL_STATES, Agent, Framework, Master, Task


@dataclass
class Snapshot:
    agents: dict[str, Agent] = field(default_factory=dict)
    frameworks: dict[str, Framework] = field(default_factory=dict)
    tasks: dict[str, Task] = field(default_factory=dict)  # by task key (<framework id>/<task id>)
    # Tasks the master lists as ended (``completed_tasks``), with their statuses.
    completed: dict[str, Task] = field(default_factory=dict)
    # Keys of tasks and ids of agents refused as a whole: their last good records are not pruned.
    unreadable_tasks: set[str] = field(default_factory=set)
    unreadable_agents: set[str] = field(default_factory=set)

    def note_unreadable(self, problems: Problems) -> Snapshot:
        self.unreadable_tasks = unreadable_ids(problems.found, "task")
        self.unreadable_agents = unreadable_ids(problems.found, "agent")
        return self
    # Agents a newly elected master knows from its registry but that have not re-registered
    # yet: their tasks are missing from the snapshot although they still run.
    recovered_agent_ids: set[str] = field(default_factory=set)


def _collect(what: str, items: object, parse, into: dict, problems: Problems, completed: dict | None = None) -> None:
    """Parse each entity on its own: a bad one is reported, the others still come out.

    Terminal tasks go to ``completed`` (when given): they feed the history reconstruction.
    """
    for raw in items if isinstance(items, list) else []:
        try:
            entity = parse_entity(what, parse, raw)
        except InputRejected as problem:
            problems.found.append(problem)
            continue
        key = entity.key if isinstance(entity, Task) else entity.id
        if getattr(entity, "state", None) not in TERMINAL_STATES:
            into[key] = entity
        elif completed is not None:
            completed[key] = entity


def _object(value: object) -> dict:
    """A JSON object where one belongs; anything else counts as empty."""
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list:
    return value if isinstance(value, list) else []


def snapshot_of_get_state(get_state: object, problems: Problems) -> Snapshot:
    """From the v1 ``get_state`` object of SUBSCRIBED or GET_STATE."""
    if not isinstance(get_state, dict):
        raise InputRejected("get-state", "get_state must be a JSON object", get_state)
    snapshot = Snapshot()
    agents = _object(get_state.get("get_agents"))
    _collect("agent", agents.get("agents"), agent_of, snapshot.agents, problems)
    for recovered in _list(agents.get("recovered_agents")):
        agent_id = value_of(recovered.get("id")) if isinstance(recovered, dict) else None
        if agent_id and agent_id not in snapshot.agents:
            snapshot.recovered_agent_ids.add(agent_id)
    _collect("framework", _object(get_state.get("get_frameworks")).get("frameworks"), framework_of, snapshot.frameworks, problems)
    tasks = _object(get_state.get("get_tasks"))
    for group in ("tasks", "launched_tasks", "completed_tasks"):  # the agent API calls them launched_tasks
        _collect("task", tasks.get(group), lambda raw: task_of(raw, problems), snapshot.tasks, problems, snapshot.completed)
    return snapshot.note_unreadable(problems)


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
    _collect("agent", doc.get("slaves"), agent_of, snapshot.agents, problems)
    for recovered in _list(doc.get("recovered_slaves")):
        agent_id = value_of(recovered.get("id")) if isinstance(recovered, dict) else None
        if agent_id and agent_id not in snapshot.agents:
            snapshot.recovered_agent_ids.add(agent_id)
    _collect("framework", doc.get("frameworks"), framework_of, snapshot.frameworks, problems)
    completed_frameworks = [(f, ("completed_tasks",)) for f in _list(doc.get("completed_frameworks"))]
    for framework, groups in [(f, ("tasks", "completed_tasks")) for f in _list(doc.get("frameworks"))] + completed_frameworks:
        if isinstance(framework, dict):
            framework_id = value_of(framework.get("id"))
            for group in groups:
                _collect("task", framework.get(group), lambda raw: task_of(raw, problems, framework_id),
                         snapshot.tasks, problems, snapshot.completed)
    hostname = _object(doc.get("leader_info")).get("hostname")
    hostname = hostname if isinstance(hostname, str) and hostname else leader[0]
    snapshot.note_unreadable(problems)
    return snapshot, Master(hostname=hostname, ip=canonical_ip(leader[0]), port=leader[1]), problems
