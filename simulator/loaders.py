"""Build a `Model` from real Mesos and Marathon documents (text in, model out; no I/O).

Mesos documents are recognised by shape: a master `/master/state`, an agent `/state`,
a SUBSCRIBE event stream (one JSON event per line, replayed into the model), or a
GET_STATE reply. Marathon documents are a `/v2/apps` reply or one app definition.
Both sides are then made consistent: Marathon tasks without a Mesos task get one (on
an agent per host), and Mesos tasks of the "marathon" framework without an app get a
synthesised app definition.
"""

from __future__ import annotations

import json
import re
from typing import Any

from simulator.convert import pid_address, task_from_legacy, unwrap
from simulator.convert_cluster import agent_from_legacy, framework_from_legacy
from simulator.marathon_apps import (app_id_problem, assign_service_ports, iso,
                                     normalize_app_id, parse_iso, service_ports, synthesize_app,
                                     used_service_ports)
from schemas.mesos import task_key
from simulator.model import Model, key_of
from simulator.operations import (DERIVED_APP_FIELDS, OperationError, agent_record, apply_launch,
                                  ensure_marathon, plan_launch)
from simulator.task_builder import Placement, build_task

MASTER_PORT = 5050


def strip_comments(text: str) -> str:
    """Browser exports start with `//` lines; drop them on purpose, keep line numbers."""
    return "\n".join("" if line.lstrip().startswith("//") else line for line in text.splitlines())


def parse_documents(name: str, text: str) -> list[Any]:
    """One JSON document, or one per line (an event stream)."""
    text = strip_comments(text)
    if not text.strip():
        raise ValueError(f"{name}: the document is empty")
    try:
        return [json.loads(text)]
    except json.JSONDecodeError as whole_error:
        if "Extra data" not in whole_error.msg:
            raise ValueError(f"{name}: malformed JSON at line {whole_error.lineno} "
                             f"column {whole_error.colno}: {whole_error.msg}") from None
    documents = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            documents.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise ValueError(f"{name}: malformed JSON event at line {number}: {error.msg}") from None
    return documents


def mesos_kind(name: str, documents: list[Any]) -> str:
    first = documents[0]
    if not isinstance(first, dict):
        raise ValueError(f"{name}: expected a JSON object, got {type(first).__name__}")
    if first.get("type") == "SUBSCRIBED" or "subscribed" in first:
        return "stream"
    if len(documents) > 1:
        raise ValueError(f"{name}: several JSON documents, but the first is not a SUBSCRIBED event")
    if first.get("type") == "GET_STATE" or "get_state" in first:
        return "get_state"
    if "master_hostname" in first:
        return "agent"
    if "slaves" in first or "leader" in first:
        return "master"
    raise ValueError(f"{name}: not a Mesos master state, agent state, SUBSCRIBE stream "
                     "or GET_STATE reply")


def load_mesos(model: Model, name: str, text: str) -> None:
    documents = parse_documents(name, text)
    kind = mesos_kind(name, documents)
    try:
        if kind == "master":
            _load_master_state(model, documents[0])
        elif kind == "agent":
            _load_agent_state(model, documents[0])
        elif kind == "get_state":
            _load_v1_state(model, documents[0]["get_state"])
        else:
            _replay(model, name, documents)
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"{name}: malformed {kind} document ({type(error).__name__}: {error})") from None


def _add_tasks(model: Model, tasks: list[dict], completed: list[dict]) -> None:
    for task in tasks:
        model.add_task(task)
    for task in completed:
        model.complete_task(task)


def _load_master_state(model: Model, state: dict) -> None:
    host, port = pid_address(state.get("pid"))
    model.master.update({
        "id": state.get("id"), "hostname": state.get("hostname") or host,
        "port": port or MASTER_PORT, "pid": state.get("pid"),
        # A master that lost leadership serves a state without `leader`: keep that.
        "leader": state.get("leader"), "version": state.get("version"),
    })
    for key in ("cluster", "start_time", "elected_time"):
        if key in state:
            model.master[key] = state[key]
    for slave in state.get("slaves", []):
        model.add_agent(agent_from_legacy(slave))
    for slave in state.get("recovered_slaves", []):
        model.add_recovered_agent(agent_from_legacy(slave)["agent_info"])
    for framework in state.get("frameworks", []):
        model.upsert_framework(framework_from_legacy(framework))
    for framework in state.get("completed_frameworks", []):
        model.completed_frameworks[str(framework.get("id"))] = framework_from_legacy(framework)
    for framework in state.get("frameworks", []) + state.get("completed_frameworks", []):
        if framework.get("pid"):
            model.framework_pids[str(framework.get("id"))] = framework["pid"]
    for framework in state.get("frameworks", []):
        _add_tasks(model, [task_from_legacy(t) for t in framework.get("tasks", [])],
                   [task_from_legacy(t) for t in framework.get("completed_tasks", [])])
    for framework in state.get("completed_frameworks", []):
        _add_tasks(model, [], [task_from_legacy(t)
                               for t in framework.get("tasks", []) + framework.get("completed_tasks", [])])
    for task in state.get("orphan_tasks", []):
        model.add_task(task_from_legacy(task))


def _load_agent_state(model: Model, state: dict) -> None:
    """An agent's own /state: a one-agent cluster led by `master_hostname`."""
    master = state["master_hostname"]
    agent = agent_from_legacy(state)
    model.master.update({"id": _id_prefix(unwrap(agent["agent_info"]["id"])), "hostname": master,
                         "port": MASTER_PORT, "pid": f"master@{master}:{MASTER_PORT}",
                         "leader": f"master@{master}:{MASTER_PORT}"})
    model.add_agent(agent)
    for framework in state.get("frameworks", []):
        model.upsert_framework(framework_from_legacy(framework))
        executors = framework.get("executors", [])
        finished = framework.get("completed_executors", [])
        _add_tasks(model,
                   [task_from_legacy(t) for e in executors for t in e.get("tasks", []) + e.get("queued_tasks", [])],
                   [task_from_legacy(t) for e in executors for t in e.get("completed_tasks", [])]
                   + [task_from_legacy(t) for e in finished for t in e.get("tasks", []) + e.get("completed_tasks", [])])
    for framework in state.get("completed_frameworks", []):
        record = framework_from_legacy(framework)
        model.completed_frameworks[unwrap(record["framework_info"]["id"])] = record


def _normalize_agent(agent: dict) -> dict:
    info = agent["agent_info"]
    agent = dict(agent)
    agent.setdefault("active", True)
    agent.setdefault("pid", f"slave(1)@{info.get('hostname')}:{info.get('port', 5051)}")
    return agent


def _normalize_framework(framework: dict) -> dict:
    framework = dict(framework)
    framework.setdefault("active", True)
    framework.setdefault("connected", framework["active"])
    framework.setdefault("recovered", False)
    return framework


def _load_v1_state(model: Model, get_state: dict) -> None:
    agents = get_state.get("get_agents", {})
    for agent in agents.get("agents", []):
        model.add_agent(_normalize_agent(agent))
    for info in agents.get("recovered_agents", []):
        model.add_recovered_agent(info)
    frameworks = get_state.get("get_frameworks", {})
    for framework in frameworks.get("frameworks", []):
        model.upsert_framework(_normalize_framework(framework))
    for framework in frameworks.get("completed_frameworks", []):
        model.completed_frameworks[unwrap(framework["framework_info"]["id"])] = framework
    model.executors = list(get_state.get("get_executors", {}).get("executors", []))
    tasks = get_state.get("get_tasks", {})
    active = [t for key in ("pending_tasks", "tasks", "launched_tasks", "unreachable_tasks", "orphan_tasks")
              for t in tasks.get(key, [])]
    for task in active:
        model.add_task(task)
    for task in tasks.get("completed_tasks", []):
        model.complete_task(task)


def _replay(model: Model, name: str, events: list[dict]) -> None:
    """Apply every event in order, so the model ends in the stream's final state."""
    for number, event in enumerate(events, start=1):
        kind = event.get("type") or next((k.upper() for k in event if k != "type"), None)
        where = f"{name}: event {number} ({kind})"
        if kind == "SUBSCRIBED":
            if number != 1:
                raise ValueError(f"{where}: a second SUBSCRIBED in one stream")
            _load_v1_state(model, event["subscribed"].get("get_state", {}))
        elif number == 1:
            raise ValueError(f"{where}: a SUBSCRIBE stream starts with SUBSCRIBED")
        elif kind == "TASK_ADDED":
            model.add_task(event["task_added"]["task"])
        elif kind == "TASK_UPDATED":
            update = event["task_updated"]
            key = task_key(unwrap(update["framework_id"]), unwrap(update["status"]["task_id"]))
            if key in model.tasks:
                model.update_task(key, update["status"])
        elif kind == "AGENT_ADDED":
            model.add_agent(_normalize_agent(event["agent_added"]["agent"]))
        elif kind == "AGENT_REMOVED":
            agent_id = unwrap(event["agent_removed"]["agent_id"])
            for task in model.agent_tasks(agent_id):
                model.update_task(key_of(task), {"task_id": task["task_id"], "state": "TASK_LOST"})
            if agent_id in model.agents:
                model.remove_agent(agent_id)
        elif kind in ("FRAMEWORK_ADDED", "FRAMEWORK_UPDATED"):
            model.upsert_framework(_normalize_framework(event[kind.lower()]["framework"]))
        elif kind == "FRAMEWORK_REMOVED":
            framework_id = unwrap(event["framework_removed"]["framework_info"]["id"])
            if framework_id in model.frameworks:
                model.remove_framework(framework_id)
        elif kind != "HEARTBEAT":
            raise ValueError(f"{where}: unknown event type")


def _id_prefix(entity_id: str) -> str | None:
    """'<master id>-S3' or '<master id>-0001' -> '<master id>'."""
    match = re.match(r"^(.+)-(S\d+|\d{4})$", entity_id or "")
    return match.group(1) if match else None


def load_marathon(model: Model, name: str, text: str) -> None:
    documents = parse_documents(name, text)
    document = documents[0]
    if len(documents) != 1 or not isinstance(document, dict):
        raise ValueError(f"{name}: expected one JSON object (a /v2/apps reply or an app definition)")
    if "apps" in document:
        apps = document["apps"]
    elif "app" in document:
        apps = [document["app"]]
    elif "id" in document:
        apps = [document]
    else:
        raise ValueError(f"{name}: neither a /v2/apps reply ({{\"apps\": [...]}}) nor an app definition")
    if not isinstance(apps, list) or not all(isinstance(a, dict) for a in apps):
        raise ValueError(f"{name}: 'apps' must be a list of app objects")
    # Kept up to date across the apps of one document: recomputing them per app is quadratic.
    taken = used_service_ports(model.apps)
    placement = Placement(model)
    for app in apps:
        problem = app_id_problem(app.get("id"))
        if problem:
            raise ValueError(f"{name}: {problem}")
        try:
            _load_app(model, name, app, taken, placement)
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"{name}: malformed app {app['id']} ({type(error).__name__}: {error})") from None


def _load_app(model: Model, name: str, app: dict, taken: set[int], placement: Placement) -> None:
    app_id = normalize_app_id(app["id"])
    definition = {k: v for k, v in app.items() if k not in DERIVED_APP_FIELDS}
    definition = assign_service_ports(dict(definition, id=app_id), taken)
    taken.update(service_ports(definition))
    version = app.get("version") or iso(model.clock())
    definition.update(instances=app.get("instances", 1), version=version,
                      versionInfo=app.get("versionInfo") or {"lastScalingAt": version,
                                                             "lastConfigChangeAt": version})
    model.apps[app_id] = definition
    if "tasks" not in app and any(a.get("active", True) for a in model.agents.values()):
        # A bare definition loaded next to a cluster: deploy it there, as Marathon would.
        framework_id, _ = ensure_marathon(model)
        try:
            apply_launch(model, definition, plan_launch(model, definition, definition["instances"], framework_id))
        except OperationError as error:
            raise ValueError(f"{name}: cannot launch {app_id}: {error.message}") from None
        return
    for marathon_task in app.get("tasks") or []:
        if marathon_task.get("id") and marathon_task["id"] not in model.tasks:
            _synthesize_mesos_task(model, definition, marathon_task, placement)


def _synthesize_mesos_task(model: Model, app: dict, marathon_task: dict, placement: Placement) -> None:
    """The Mesos side of a task known only from Marathon."""
    framework_id, _ = ensure_marathon(model)
    host = marathon_task.get("host") or "localhost"
    agent_id = marathon_task.get("slaveId")
    if agent_id not in model.agents:
        by_host = [a for a, r in model.agents.items() if r["agent_info"].get("hostname") == host]
        if by_host and not agent_id:
            agent_id = by_host[0]
        else:
            if not model.master.get("id") and agent_id:
                model.master["id"] = _id_prefix(agent_id)
            model.add_agent(agent_record(model, host, agent_id))
            agent_id = agent_id or next(reversed(model.agents))
    task, status = build_task(model, app, agent_id, framework_id, placement, task_id=marathon_task["id"],
                              host_ports=marathon_task.get("ports") or [],
                              ip_addresses=marathon_task.get("ipAddresses"))
    staged = parse_iso(marathon_task.get("stagedAt"))
    started = parse_iso(marathon_task.get("startedAt"))
    results = marathon_task.get("healthCheckResults") or []
    status.pop("healthy", None)
    if results:
        status["healthy"] = all(r.get("alive") for r in results)
    state = marathon_task.get("state") or "TASK_RUNNING"
    status.update(state=state, timestamp=started or staged or model.clock())
    task.update(state=state, statuses=[] if state == "TASK_STAGING" else [status])
    meta = {"app_id": app["id"], "version": marathon_task.get("version"), "staged_at": staged,
            "started_at": started}
    if results:
        meta["health"] = {k: (parse_iso(v) if k in ("firstSuccess", "lastSuccess", "lastFailure") else v)
                          for k, v in results[0].items() if k != "taskId"}
    model.add_task(task, meta={k: v for k, v in meta.items() if v is not None})


def finish(model: Model) -> Model:
    """Index Marathon tasks, synthesise missing apps, fill in the master's identity."""
    if not model.master.get("id"):
        ids = list(model.agents) + list(model.recovered_agents) + list(model.frameworks)
        model.master["id"] = next((p for p in map(_id_prefix, ids) if p), None) or model.new_uuid()
    for key, task in model.tasks.items():
        if model.is_marathon_task(task) and key not in model.task_meta:
            model.index_marathon_task(task)
    orphans: dict[str, list[dict]] = {}
    for key, meta in model.task_meta.items():
        if meta["app_id"] not in model.apps:
            orphans.setdefault(meta["app_id"], []).append(model.tasks[key])
    for app_id, tasks in orphans.items():
        app = assign_service_ports(synthesize_app(app_id, tasks), used_service_ports(model.apps))
        staged = min(model.task_meta[key_of(t)]["staged_at"] for t in tasks)
        app.update(version=iso(staged), versionInfo={"lastScalingAt": iso(staged),
                                                     "lastConfigChangeAt": iso(staged)})
        model.apps[app_id] = app
    for meta in model.task_meta.values():
        meta.setdefault("version", model.apps[meta["app_id"]].get("version"))
    return model


def model_from_texts(mesos: tuple[str, str] | None = None, marathon: tuple[str, str] | None = None,
                     seed: int | None = None) -> Model:
    """(file name, text) of each document -> a consistent model."""
    model = Model(seed=seed)
    if mesos is not None:
        load_mesos(model, *mesos)
    if marathon is not None:
        load_marathon(model, *marathon)
    return finish(model)

