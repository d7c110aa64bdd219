"""The Mesos side of the producer as a state machine: snapshots and events in, records out.

No I/O: the loop feeds it parsed SUBSCRIBE records (or polled states) and a clock; it keeps
the cluster view and tells the Publisher what each table should hold.

Failover lesson from dcos-net: a newly elected master lists agents it has not heard from
again as *recovered*, and their tasks are missing from its snapshot although they still
run. Their records are protected from pruning until the agent re-registers (then its tasks
get ``recovery_grace`` seconds to be re-announced) or ``recovery_timeout`` passes.
"""

from __future__ import annotations

from producers.mesos.normalize import agent_of, framework_of, task_of, value_of, with_endpoint, with_status
from producers.mesos.snapshot import Snapshot, snapshot_of_get_state
from producers.history_gap import Gap, reconstructed_task_events
from producers.mesos.heartbeat import DEFAULT_HEARTBEAT_S, heartbeat_interval_of
from producers.problems import InputRejected, Problems, parse_entity
from producers.publisher import Publisher
from schemas.headers import Observation
from schemas.mesos import TERMINAL_STATES, Cluster, Master, Task, task_key

EVENT_TYPES = frozenset(
    {
        "SUBSCRIBED",
        "TASK_ADDED",
        "TASK_UPDATED",
        "AGENT_ADDED",
        "AGENT_REMOVED",
        "FRAMEWORK_ADDED",
        "FRAMEWORK_UPDATED",
        "FRAMEWORK_REMOVED",
        "HEARTBEAT",
    }
)


class MesosObserver:
    def __init__(
        self,
        publisher: Publisher,
        masters: list[Master],
        recovery_grace: float = 10.0,
        recovery_timeout: float = 600.0,
    ):
        self.publisher = publisher
        self.masters = masters
        self.recovery_grace = recovery_grace
        self.recovery_timeout = recovery_timeout
        self.tasks: dict[str, Task] = {}  # by task key: <framework id>/<task id>
        self.heartbeat_interval: float = DEFAULT_HEARTBEAT_S
        self.snapshots = 0  # full snapshots applied: each one is a completed sync
        # Scheduler addresses from the legacy /master/frameworks PIDs, by framework id.
        self.framework_endpoints: dict[str, tuple[str | None, int]] = {}
        self.pending_gap: Gap | None = None
        # agent id -> deadline: still unheard of since failover / re-registered, tasks settling
        self._recovering: dict[str, float] = {}
        self._settling: dict[str, float] = {}

    # -- snapshots -------------------------------------------------------------------------
    def expect_gap(self, gap: Gap) -> None:
        """Nobody watched since ``gap.since``: the next snapshot writes the gap and rebuilds history.

        The earliest pending gap wins, so a stream that breaks again before a resync keeps the
        start of the whole span."""
        if self.pending_gap is None or gap.since < self.pending_gap.since:
            self.pending_gap = gap

    def on_snapshot(self, snapshot: Snapshot, leader: Master, now: float, obs: Observation) -> None:
        """Make every table equal the snapshot, except what recovered agents still own and the
        last good records of entities that could not be read this time."""
        publisher = self.publisher
        if self.pending_gap is not None:
            known = dict(publisher.tables["tasks"].items())
            rebuilt = reconstructed_task_events(snapshot.completed, known, self.pending_gap, now, publisher.source)
            publisher.history_gap(self.pending_gap, now, rebuilt)
            self.pending_gap = None
        self._recovering = {
            agent_id: self._recovering.get(agent_id, now + self.recovery_timeout)
            for agent_id in snapshot.recovered_agent_ids
        }
        self.tasks = dict(snapshot.tasks)
        frameworks = {key: with_endpoint(framework, self.framework_endpoints)
                      for key, framework in snapshot.frameworks.items()}
        publisher.sync("cluster", {"cluster": self._cluster(leader)}, obs)
        unreadable_agents = snapshot.unreadable_agents
        publisher.sync("agents", snapshot.agents, obs, keep=lambda key, _: key in self._recovering or key in unreadable_agents)
        publisher.sync("frameworks", frameworks, obs)
        unreadable_tasks = snapshot.unreadable_tasks
        publisher.sync(
            "tasks", snapshot.tasks, obs,
            keep=lambda key, task: key in unreadable_tasks or self._owned_by_recovering_agent(key, task),
        )
        self.snapshots += 1

    def on_framework_endpoints(self, endpoints: dict[str, tuple[str | None, int]], obs: Observation) -> None:
        """The schedulers' PIDs from the legacy ``/master/frameworks`` (the operator API has
        none): every published framework without an address gets the one its PID gives."""
        self.framework_endpoints = endpoints
        table = self.publisher.tables["frameworks"]
        for key, framework in list(table.items()):
            if framework is not None and (enriched := with_endpoint(framework, endpoints)) != framework:
                self.publisher.put("frameworks", key, enriched, obs)

    def _cluster(self, leader: Master) -> Cluster:
        masters = self.masters or [leader]
        return Cluster(leader=leader, masters=masters)

    def _owned_by_recovering_agent(self, key: str, task: Task | None) -> bool:
        return task is not None and task.agent_id in self._recovering

    # -- events ----------------------------------------------------------------------------
    def on_event(self, event: object, leader: Master, now: float, obs: Observation) -> None:
        """Apply one SUBSCRIBE record. Bad records are rejected; nothing is raised."""
        try:
            self._dispatch(event, leader, now, obs)
        except InputRejected as problem:
            self.publisher.reject(problem)
        except Exception as error:  # noqa: BLE001 - any field may have any type; one event must not stop the stream
            self.publisher.reject(InputRejected("event", f"malformed {_type_of(event)} event: {error!r}", event))

    def _dispatch(self, event: object, leader: Master, now: float, obs: Observation) -> None:
        kind = _type_of(event)
        if kind not in EVENT_TYPES:
            raise InputRejected("event", f"unknown event type {kind!r}", event)
        problems = Problems()
        body = event.get(kind.lower()) or {}
        if not isinstance(body, dict):
            raise InputRejected("event", f"{kind} body must be a JSON object", event)
        if kind == "SUBSCRIBED":
            self.heartbeat_interval, problem = heartbeat_interval_of(body.get("heartbeat_interval_seconds"))
            if problem is not None:
                problems.found.append(problem)
            self.on_snapshot(snapshot_of_get_state(body.get("get_state"), problems), leader, now, obs)
        elif kind == "TASK_ADDED":
            self._put_task(parse_entity("task", lambda raw: task_of(raw, problems), body.get("task")), obs)
        elif kind == "TASK_UPDATED":
            self._update_task(body, problems, obs)
        elif kind == "AGENT_ADDED":
            agent = agent_of(body["agent"])
            if self._recovering.pop(agent.id, None) is not None:
                self._settling[agent.id] = now + self.recovery_grace
            self.publisher.put("agents", agent.id, agent, obs)
        elif kind == "AGENT_REMOVED":
            self._remove_agent(value_of(body["agent_id"]), obs)
        elif kind in ("FRAMEWORK_ADDED", "FRAMEWORK_UPDATED"):
            framework = with_endpoint(framework_of(body["framework"]), self.framework_endpoints)
            self.publisher.put("frameworks", framework.id, framework, obs)
        elif kind == "FRAMEWORK_REMOVED":
            framework = framework_of(body["framework_info"])
            self.publisher.remove("frameworks", framework.id, obs)
        for problem in problems.found:
            self.publisher.reject(problem)

    def _put_task(self, task: Task, obs: Observation) -> None:
        key = task.key
        if task.state in TERMINAL_STATES:
            self.tasks.pop(key, None)
            self.publisher.remove("tasks", key, obs, final=task)
        else:
            self.tasks[key] = task
            self.publisher.put("tasks", key, task, obs)

    def _update_task(self, body: dict, problems: Problems, obs: Observation) -> None:
        status = body["status"]
        task_id = value_of(status.get("task_id"))
        # TASK_UPDATED names the framework beside the status (v1 Event.TaskUpdated.framework_id).
        framework_id = value_of(body.get("framework_id"))
        if not task_id or not framework_id:
            raise InputRejected("event", "TASK_UPDATED needs status.task_id and framework_id", body)
        key = task_key(framework_id, task_id)
        task = self.tasks.get(key)
        if task is None:
            if body.get("state") in TERMINAL_STATES or status.get("state") in TERMINAL_STATES:
                self.publisher.remove("tasks", key, obs)  # may have been published before a restart
                return
            raise InputRejected("event", f"status update for task {task_id!r} of framework {framework_id!r} "
                                         "that was never announced", body)
        self._put_task(with_status(task, status, body.get("state"), problems), obs)

    def _remove_agent(self, agent_id: str, obs: Observation) -> None:
        self._recovering.pop(agent_id, None)
        self._settling.pop(agent_id, None)
        for key in [key for key, task in self.tasks.items() if task.agent_id == agent_id]:
            del self.tasks[key]
            self.publisher.remove("tasks", key, obs)
        self.publisher.remove("agents", agent_id, obs)

    # -- timers ----------------------------------------------------------------------------
    def on_tick(self, now: float, obs: Observation) -> None:
        """Prune what recovered agents owned once they settled or never came back."""
        for agent_id, deadline in list(self._settling.items()):
            if now >= deadline:
                del self._settling[agent_id]
                self._prune_tasks_of(agent_id, obs)
        for agent_id, deadline in list(self._recovering.items()):
            if now >= deadline:
                del self._recovering[agent_id]
                self._prune_tasks_of(agent_id, obs)
                self.publisher.remove("agents", agent_id, obs)

    def _prune_tasks_of(self, agent_id: str, obs: Observation) -> None:
        table = self.publisher.tables["tasks"]
        for key, task in table.items():
            if task is not None and task.agent_id == agent_id and key not in self.tasks:
                self.publisher.remove("tasks", key, obs)


def _type_of(event: object) -> str:
    kind = event.get("type") if isinstance(event, dict) else None
    return kind if isinstance(kind, str) else "<missing type>"
