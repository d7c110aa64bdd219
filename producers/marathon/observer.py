"""The Marathon side of the producer as a state machine: resyncs and SSE events in, records out.

No I/O. Events that announce a changed app definition (``api_post_event``,
``deployment_success``) return the app ids to fetch again, because an event's body may be
a partial update; the loop fetches them and calls ``on_app``.
"""

from __future__ import annotations

import msgspec
import orjson

from producers.marathon.normalize import app_of, app_task_of, app_task_of_status_update, normalize_app_id
from producers.marathon.sse import ServerSentEvent
from schemas.mesos import TERMINAL_STATES
from producers.history_gap import Gap
from producers.problems import InputRejected, Problems, parse_entity, unreadable_ids
from producers.publisher import Publisher
from schemas.headers import Observation
from schemas.marathon import AppTask, HealthCheckResult

# The event types the producer subscribes to (the event_type filter) and handles.
EVENT_TYPES = (
    "event_stream_attached",
    "status_update_event",
    "health_status_changed_event",
    "api_post_event",
    "app_terminated_event",
    "deployment_success",
)


class MarathonObserver:
    def __init__(self, publisher: Publisher):
        self.publisher = publisher
        self.pending_gap: Gap | None = None

    def expect_gap(self, gap: Gap) -> None:
        """Nobody watched since ``gap.since``: the next full resync records the gap (Marathon
        keeps no history of ended tasks, so nothing can be rebuilt). The earliest one wins."""
        if self.pending_gap is None or gap.since < self.pending_gap.since:
            self.pending_gap = gap

    def on_apps(self, body: bytes, obs: Observation) -> None:
        """A full ``/v2/apps?embed=apps.tasks`` reply: both tables become exactly that."""
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise InputRejected("apps", f"malformed JSON: {error}", body) from None
        if not isinstance(doc, dict) or not isinstance(doc.get("apps"), list):
            raise InputRejected("apps", "expected an object with an apps list", body)
        problems = Problems()
        apps, tasks = {}, {}
        for raw in doc["apps"]:
            try:
                app = parse_entity("app", lambda raw: app_of(raw, problems), raw)
            except InputRejected as problem:
                problems.found.append(problem)
                continue
            apps[app.id] = app
            raw_tasks = raw.get("tasks") or []
            for raw_task in raw_tasks if isinstance(raw_tasks, list) else [raw_tasks]:
                try:
                    task = parse_entity("app-task", lambda raw: app_task_of(raw, app.id), raw_task)
                except InputRejected as problem:
                    problems.found.append(problem)
                    continue
                if task.state not in TERMINAL_STATES:
                    tasks[task.id] = task
        if self.pending_gap is not None:
            self.publisher.history_gap(self.pending_gap, obs.observed_ns / 1e9, [])
            self.pending_gap = None
        # An app or task that could not be read keeps its last good record (and an unreadable
        # app its tasks), instead of vanishing from the tables.
        bad_apps = {normalize_app_id(i) for i in unreadable_ids(problems.found, "app")}
        bad_tasks = unreadable_ids(problems.found, "app-task")
        self.publisher.sync("apps", apps, obs, keep=lambda key, _: key in bad_apps)
        self.publisher.sync(
            "app-tasks", tasks, obs,
            keep=lambda key, task: key in bad_tasks or (isinstance(task, AppTask) and task.app_id in bad_apps),
        )
        self._reject_all(problems)

    def on_app(self, app_id: str, body: bytes | None, obs: Observation) -> None:
        """A ``/v2/apps/{id}?embed=app.tasks`` reply (None: the app is gone)."""
        app_id = normalize_app_id(app_id)
        if body is None:
            self._remove_app(app_id, obs)
            return
        try:
            raw = orjson.loads(body)["app"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as error:
            self.publisher.reject(InputRejected("app", f"malformed app reply: {error!r}", body))
            return
        problems = Problems()
        try:
            self.publisher.put("apps", app_id, parse_entity("app", lambda raw: app_of(raw, problems), raw), obs)
        except InputRejected as problem:
            problems.found.append(problem)
        self._reject_all(problems)

    def on_event(self, event: ServerSentEvent, obs: Observation) -> set[str]:
        """Apply one SSE event; returns app ids to fetch again. Bad events are rejected."""
        try:
            return self._dispatch(event, obs)
        except InputRejected as problem:
            self.publisher.reject(problem)
        except Exception as error:  # noqa: BLE001 - any field may have any type; one event must not stop the stream
            self.publisher.reject(InputRejected("sse-event", f"malformed {event.event}: {error!r}", event.data))
        return set()

    def _dispatch(self, event: ServerSentEvent, obs: Observation) -> set[str]:
        if event.event not in EVENT_TYPES:
            raise InputRejected("sse-event", f"unknown event type {event.event!r}", event.data)
        try:
            body = orjson.loads(event.data)
        except orjson.JSONDecodeError as error:
            raise InputRejected("sse-event", f"malformed JSON in {event.event}: {error}", event.data) from None
        if not isinstance(body, dict):
            raise InputRejected("sse-event", f"{event.event} must carry a JSON object", event.data)
        if event.event == "status_update_event":
            table = self.publisher.tables["app-tasks"]
            task = app_task_of_status_update(body, table.get(body.get("taskId")))
            if task.state in TERMINAL_STATES:
                self.publisher.remove("app-tasks", task.id, obs, final=task)
            else:
                self.publisher.put("app-tasks", task.id, task, obs)
        elif event.event == "health_status_changed_event":
            self._health_changed(body, obs)
        elif event.event == "api_post_event":
            definition = body.get("appDefinition") or {}
            if isinstance(definition.get("id"), str):
                return {normalize_app_id(definition["id"])}
        elif event.event == "app_terminated_event":
            self._remove_app(normalize_app_id(body["appId"]), obs)
        elif event.event == "deployment_success":
            return _apps_of_plan(body.get("plan") or {})
        return set()

    def _health_changed(self, body: dict, obs: Observation) -> None:
        table = self.publisher.tables["app-tasks"]
        task_id = body.get("taskId") or body.get("instanceId")
        task = table.get(task_id) if task_id else None
        if task is None and isinstance(body.get("instanceId"), str):
            task = next((t for key, t in table.items() if t and key.startswith(body["instanceId"])), None)
        if task is None:
            raise InputRejected("sse-event", f"health change for unknown task {task_id!r}", body)
        healthy = HealthCheckResult(alive=bool(body.get("alive")))
        self.publisher.put("app-tasks", task.id, msgspec.structs.replace(task, health_check_results=[healthy]), obs)

    def _remove_app(self, app_id: str, obs: Observation) -> None:
        tasks = self.publisher.tables["app-tasks"]
        for key, task in tasks.items():
            if isinstance(task, AppTask) and task.app_id == app_id:
                self.publisher.remove("app-tasks", key, obs)
        self.publisher.remove("apps", app_id, obs)

    def _reject_all(self, problems: Problems) -> None:
        for problem in problems.found:
            self.publisher.reject(problem)


def _apps_of_plan(plan: dict) -> set[str]:
    apps = set()
    for step in plan.get("steps") or []:
        for action in (step or {}).get("actions") or []:
            if isinstance(action, dict) and isinstance(action.get("app"), str):
                apps.add(normalize_app_id(action["app"]))
    return apps
