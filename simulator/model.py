"""The simulated cluster: Mesos objects in the v1 operator-API shape plus Marathon apps.

Every mutation returns the list of `Change`s it made, stamped with the wall-clock time
taken right when the model changed. The server turns those changes into Mesos and
Marathon events, and the control API returns them to the caller, so a test can measure
how long a change took to reach the far end of the pipeline.

Task dicts are replaced, never edited in place: a `Change` keeps a reference to the
task as it was at that moment, and is rendered after the whole operation finished.
"""

from __future__ import annotations

import itertools
import random
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from simulator.convert import unwrap
from simulator.marathon_apps import app_id_for_task
from schemas.mesos import task_key

TERMINAL_STATES = frozenset({
    "TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR",
    "TASK_DROPPED", "TASK_GONE", "TASK_GONE_BY_OPERATOR",
})
MARATHON = "marathon"


def key_of(task: dict) -> str:
    """``<framework id>/<task id>``: Mesos keeps a task id unique only within its framework,
    so the model keys every task (and its Marathon facts) by both, as the tasks topic does."""
    return task_key(unwrap(task["framework_id"]), unwrap(task["task_id"]))
# Mesos keeps this many completed tasks per framework (--max_completed_tasks_per_framework).
MAX_COMPLETED_TASKS = 1000


@dataclass(frozen=True)
class Change:
    """One change of the model.

    kind: task_added, task_updated, agent_added, agent_removed, framework_added,
    framework_updated, framework_removed, app_created, app_updated, app_deleted,
    deployment_success.
    """

    kind: str
    at: float
    task: dict | None = None
    status: dict | None = None
    agent: dict | None = None
    framework: dict | None = None
    app: dict | None = None
    app_id: str | None = None
    # Task changes: the state before, whether `healthy` changed, and a snapshot of the
    # Marathon facts (host, version...) that outlives the task and its agent.
    previous_state: str | None = None
    health_changed: bool = False
    meta: dict | None = None
    extra: dict = field(default_factory=dict)


class Model:
    def __init__(self, clock: Callable[[], float] = time.time, seed: int | None = None):
        self.clock = clock
        self.rng = random.Random(seed)
        self.master: dict[str, Any] = {}
        self.agents: dict[str, dict] = {}
        self.recovered_agents: dict[str, dict] = {}
        self.frameworks: dict[str, dict] = {}
        # The scheduler pid ('scheduler-x@10.0.0.1:43078') only the legacy state carries;
        # the v1 Framework message has no field for it.
        self.framework_pids: dict[str, str] = {}
        self.completed_frameworks: dict[str, dict] = {}
        self.tasks: dict[str, dict] = {}  # by key_of(task)
        # agent id -> keys of its active tasks: placement asks this for every launch, so it must
        # not scan every task (10,000 apps loaded in minutes otherwise).
        self._tasks_of_agent: dict[str, set[str]] = {}
        # app id -> keys of tasks whose task_meta named that app (possibly stale: app_tasks
        # checks), and each active task's position in `tasks`: churn asks app_tasks for every
        # launch and kill, and a scan of 30,000 tasks each time capped it far below 50 per second.
        self._tasks_of_app: dict[str, set[str]] = {}
        self._position: dict[str, int] = {}
        self._positions = itertools.count()
        self.completed_tasks: dict[str, deque] = {}
        self.executors: list[dict] = []
        self.apps: dict[str, dict] = {}
        # Marathon-only facts about a task that Mesos does not carry: app id, app
        # version, staging time and the health-check history.
        self.task_meta: dict[str, dict] = {}
        # Stable per-agent index (overlay subnets) and the round-robin cursor.
        self.agent_index: dict[str, int] = {}
        # Overlay subnets given per agent (simulator/overlays.py): agent id -> overlay -> kind -> subnet.
        self.agent_overlays: dict[str, dict[str, dict[str, str]]] = {}
        self.round_robin = 0

    # -- ids ------------------------------------------------------------------------

    def new_uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def master_id(self) -> str:
        if not self.master.get("id"):
            self.master["id"] = self.new_uuid()
        return self.master["id"]

    def next_agent_id(self) -> str:
        taken = set(self.agents) | set(self.recovered_agents)
        n = 0
        while f"{self.master_id()}-S{n}" in taken:
            n += 1
        return f"{self.master_id()}-S{n}"

    def next_framework_id(self) -> str:
        taken = set(self.frameworks) | set(self.completed_frameworks)
        n = 0
        while f"{self.master_id()}-{n:04d}" in taken:
            n += 1
        return f"{self.master_id()}-{n:04d}"

    # -- queries --------------------------------------------------------------------

    def marathon_framework_ids(self) -> list[str]:
        return [fid for fid, fw in self.frameworks.items()
                if fw["framework_info"].get("name") == MARATHON]

    def is_marathon_task(self, task: dict) -> bool:
        return unwrap(task.get("framework_id")) in self.marathon_framework_ids()

    def app_tasks(self, app_id: str) -> list[dict]:
        """Active tasks of a Marathon app, oldest first (in the order of `tasks`)."""
        candidates = self._tasks_of_app.get(app_id, set())
        current = {key for key in candidates if key in self.tasks and self.task_meta.get(key, {}).get("app_id") == app_id}
        candidates &= current  # forget the tasks that finished or moved to another app
        return [self.tasks[key] for key in sorted(current, key=self._position.__getitem__)]

    def tasks_by_app(self) -> dict[str, list[dict]]:
        """`app_tasks` of every app at once, in one pass: /v2/apps would otherwise scan every
        task once per app (10,000 apps x 30,000 tasks: minutes, with the simulator frozen)."""
        grouped: dict[str, list[dict]] = {}
        for key, task in self.tasks.items():
            app_id = self.task_meta.get(key, {}).get("app_id")
            if app_id is not None:
                grouped.setdefault(app_id, []).append(task)
        return grouped

    def agent_tasks(self, agent_id: str) -> list[dict]:
        return [self.tasks[key] for key in self._tasks_of_agent.get(agent_id, ()) if key in self.tasks]

    def _keep_task(self, key: str, task: dict) -> None:
        if key not in self.tasks:
            self._position[key] = next(self._positions)
        self.tasks[key] = task
        self._tasks_of_agent.setdefault(unwrap(task.get("agent_id")), set()).add(key)

    def _drop_task(self, key: str) -> None:
        task = self.tasks.pop(key)
        self._position.pop(key, None)
        self._tasks_of_agent.get(unwrap(task.get("agent_id")), set()).discard(key)

    def find_task(self, task_id: str, framework_id: str | None = None) -> str:
        """The key of the active task with this id (in this framework, when given).

        Raises LookupError naming the frameworks when the id alone is ambiguous."""
        if framework_id is not None:
            key = task_key(framework_id, task_id)
            if key not in self.tasks:
                raise LookupError(f"task {task_id} of framework {framework_id} does not exist or is no longer active")
            return key
        # Frameworks are few; scanning them keeps a kill by id O(frameworks), not O(tasks).
        candidates = (task_key(fid, task_id) for fid in {*self.frameworks, *self.completed_frameworks})
        keys = [key for key in candidates if key in self.tasks]
        if not keys:
            raise LookupError(f"task {task_id} does not exist or is no longer active")
        if len(keys) > 1:
            raise LookupError(f"task id {task_id} is used by frameworks {', '.join(sorted(k.split('/', 1)[0] for k in keys))}; "
                              "name one with ?framework_id=")
        return keys[0]

    def completed(self) -> list[dict]:
        return [t for tasks in self.completed_tasks.values() for t in tasks]

    def health_of(self, key: str) -> bool | None:
        """The latest `healthy` a task reported, None when it never reported one."""
        for status in reversed(self.tasks.get(key, {}).get("statuses", [])):
            if "healthy" in status:
                return bool(status["healthy"])
        return None

    def summary(self) -> dict:
        states: dict[str, int] = {}
        for task in self.tasks.values():
            states[task["state"]] = states.get(task["state"], 0) + 1
        return {
            "agents": len(self.agents),
            "recovered_agents": len(self.recovered_agents),
            "frameworks": len(self.frameworks),
            "tasks": len(self.tasks),
            "task_states": states,
            "completed_tasks": sum(len(t) for t in self.completed_tasks.values()),
            "apps": len(self.apps),
            "marathon_tasks": sum(1 for t in self.tasks.values() if self.is_marathon_task(t)),
        }

    # -- agents and frameworks ------------------------------------------------------

    def add_agent(self, agent: dict) -> list[Change]:
        agent_id = unwrap(agent["agent_info"]["id"])
        self.recovered_agents.pop(agent_id, None)
        self.agents[agent_id] = agent
        if agent_id not in self.agent_index:
            self.agent_index[agent_id] = len(self.agent_index) + 1
        return [Change("agent_added", self.clock(), agent=agent)]

    def add_recovered_agent(self, agent_info: dict) -> None:
        """Known from the registry after a failover but not re-registered yet."""
        agent_id = unwrap(agent_info["id"])
        if agent_id not in self.agents:
            self.recovered_agents[agent_id] = agent_info
            self.agent_index.setdefault(agent_id, len(self.agent_index) + 1)

    def remove_agent(self, agent_id: str) -> list[Change]:
        """Drop the agent; its tasks must already be terminal (see operations)."""
        agent = self.agents.pop(agent_id)
        self.executors = [e for e in self.executors if unwrap(e.get("agent_id")) != agent_id]
        return [Change("agent_removed", self.clock(), agent=agent)]

    def upsert_framework(self, framework: dict) -> list[Change]:
        framework_id = unwrap(framework["framework_info"]["id"])
        kind = "framework_updated" if framework_id in self.frameworks else "framework_added"
        self.completed_frameworks.pop(framework_id, None)
        self.frameworks[framework_id] = framework
        return [Change(kind, self.clock(), framework=framework)]

    def remove_framework(self, framework_id: str) -> list[Change]:
        """Mesos tears the framework's tasks down with it."""
        framework = self.frameworks.pop(framework_id)
        self.completed_frameworks[framework_id] = framework
        for task in [t for t in self.tasks.values() if unwrap(t["framework_id"]) == framework_id]:
            self.complete_task(dict(task, state="TASK_KILLED"))
        self.executors = [e for e in self.executors
                          if unwrap(e.get("executor_info", {}).get("framework_id")) != framework_id]
        return [Change("framework_removed", self.clock(), framework=framework)]

    # -- tasks ----------------------------------------------------------------------

    def add_task(self, task: dict, meta: dict | None = None) -> list[Change]:
        key = key_of(task)
        at = self.clock()
        snapshot = None
        if self.is_marathon_task(task):
            snapshot = self.index_marathon_task(task, meta, at)
        if task["state"] in TERMINAL_STATES:
            self.complete_task(task)
        else:
            self._keep_task(key, task)
        return [Change("task_added", at, task=task, app_id=(snapshot or {}).get("app_id"),
                       meta=snapshot)]

    def index_marathon_task(self, task: dict, meta: dict | None = None, at: float | None = None) -> dict:
        """Record the Marathon-side facts of a task of the marathon framework."""
        agent_id = unwrap(task.get("agent_id"))
        agent_info = self.agents.get(agent_id, {}).get("agent_info") or self.recovered_agents.get(agent_id, {})
        statuses = task.get("statuses") or []
        first = statuses[0].get("timestamp") if statuses else None
        running = [s.get("timestamp") for s in statuses if s.get("state") == "TASK_RUNNING"]
        record = {"app_id": app_id_for_task(task), "staged_at": first or at or self.clock(),
                  "host": agent_info.get("hostname")}
        if running and running[0]:
            record["started_at"] = running[0]
        for status in statuses:
            self._record_health(record, status, status.get("timestamp") or record["staged_at"])
        record.update(meta or {})
        self.task_meta[key_of(task)] = record
        self._tasks_of_app.setdefault(record["app_id"], set()).add(key_of(task))
        return dict(record)

    def update_task(self, key: str, status: dict) -> list[Change]:
        """Apply a status update the way the master does (one status per state) to the task
        with this key (``key_of``)."""
        old = self.tasks[key]
        at = self.clock()
        previous_health = self.health_of(key)
        statuses = list(old.get("statuses", []))
        if statuses and statuses[-1].get("state") == status["state"]:
            statuses[-1] = status
        else:
            statuses.append(status)
        task = dict(old, state=status["state"], statuses=statuses)
        if "uuid" in status:
            task["status_update_state"] = status["state"]
            task["status_update_uuid"] = status["uuid"]
        meta = self.task_meta.get(key)
        health_changed = "healthy" in status and status["healthy"] != previous_health
        if meta is not None:
            self._record_health(meta, status, at)
            if status["state"] == "TASK_RUNNING" and not meta.get("started_at"):
                meta["started_at"] = status.get("timestamp", at)
        if status["state"] in TERMINAL_STATES:
            self._drop_task(key)
            self.complete_task(task)
        else:
            self._keep_task(key, task)
        return [Change("task_updated", at, task=task, status=status, app_id=(meta or {}).get("app_id"),
                       previous_state=old["state"], health_changed=health_changed,
                       meta=None if meta is None else dict(meta, health=dict(meta.get("health") or {})))]

    def _record_health(self, meta: dict, status: dict, at: float) -> None:
        if "healthy" not in status:
            return
        health = meta.setdefault("health", {"consecutiveFailures": 0, "firstSuccess": None,
                                            "lastSuccess": None, "lastFailure": None})
        health["alive"] = bool(status["healthy"])
        if status["healthy"]:
            health["consecutiveFailures"] = 0
            health["lastSuccess"] = at
            health["firstSuccess"] = health["firstSuccess"] or at
        else:
            health["consecutiveFailures"] += 1
            health["lastFailure"] = at

    def complete_task(self, task: dict) -> None:
        """Keep a finished task in its framework's bounded history."""
        framework_id = unwrap(task["framework_id"])
        queue = self.completed_tasks.setdefault(framework_id, deque(maxlen=MAX_COMPLETED_TASKS))
        queue.append(task)
        self.task_meta.pop(key_of(task), None)

    # -- Marathon apps --------------------------------------------------------------

    def put_app(self, app: dict, extra: dict | None = None) -> list[Change]:
        kind = "app_updated" if app["id"] in self.apps else "app_created"
        self.apps[app["id"]] = app
        return [Change(kind, self.clock(), app=app, app_id=app["id"], extra=extra or {})]

    def remove_app(self, app_id: str) -> list[Change]:
        app = self.apps.pop(app_id)
        return [Change("app_deleted", self.clock(), app=app, app_id=app_id)]

    def deployment(self, app_id: str, action: str, original: dict | None,
                   target: dict | None) -> list[Change]:
        """A finished Marathon deployment (rendered as deployment_success)."""
        extra = {"id": self.new_uuid(), "action": action, "original": original, "target": target}
        return [Change("deployment_success", self.clock(), app_id=app_id, extra=extra)]
