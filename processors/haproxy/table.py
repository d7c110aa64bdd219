"""The HAProxy service table kept up to date one entity at a time (pure): what the stage runs.

The unit of derivation is a logical app (services.py): an app, or the apps of one blue/green
deployment group. An update re-derives only the units it touches:

- an app: the unit it belonged to and the unit it belongs to now (a label change can move
  it between a deployment group and its own id);
- a task: the unit of its app;
- an agent: the units of the tasks on that agent (their address is the agent's IP).

A unit's old records are replaced by its new ones; only keys whose value changed are
returned (``None``: gone). A task joining or leaving therefore changes only ``servers`` of
its unit's records, and other apps are never touched. A bad label refuses its port or its
app (services.py); the refusal is reported once per new set of problems of that unit.
"""

from __future__ import annotations

from collections.abc import Iterable

from processors.indexes import unindex
from processors.haproxy.labels import Rejection
from processors.haproxy.services import DEFAULTS, Options, logical_id, services_of
from schemas.addresses import canonical_ip
from schemas.haproxy import Service
from schemas.marathon import App, AppTask

Changes = dict[str, Service | None]
Causes = dict[str, int]
KINDS = ("app", "app_task", "agent")


class HaproxyTable:
    """``records``: every service now; ``rejections``: the current problems of each unit;
    ``take_rejections()``: those that are new since the last call."""

    def __init__(self, options: Options = DEFAULTS):
        self.options = options
        self.apps: dict[str, App] = {}
        self.tasks: dict[str, AppTask] = {}
        self.agent_ips: dict[str, str] = {}
        self.records: dict[str, Service] = {}
        self.rejections: dict[str, tuple[Rejection, ...]] = {}  # by unit (logical app id)
        self._new_rejections: list[Rejection] = []
        self._unit_of_app: dict[str, str] = {}
        self._apps_of_unit: dict[str, set[str]] = {}
        self._tasks_of_app: dict[str, set[str]] = {}
        self._tasks_of_agent: dict[str, set[str]] = {}
        self._keys_of_unit: dict[str, set[str]] = {}

    def put_many(self, updates: Iterable[tuple[str, str, object]]) -> Changes:
        return self.apply_batch(updates)[0]

    def apply_batch(self, updates: Iterable[tuple[str, str, object]]) -> tuple[Changes, Causes]:
        """Apply ``(kind, key, entity or None)`` updates; the changed keys, and for each the
        index of the newest update behind it. Each touched unit is derived once."""
        dirty: dict[str, int] = {}
        for index, (kind, key, value) in enumerate(updates):
            for unit in self._store(kind, key, value):
                dirty[unit] = index
        changes: Changes = {}
        causes: Causes = {}
        for unit, cause in dirty.items():
            for key, value in self._rederive(unit).items():
                changes[key] = value
                causes[key] = cause
        return changes, causes

    def take_rejections(self) -> list[Rejection]:
        taken, self._new_rejections = self._new_rejections, []
        return taken

    # -- bookkeeping ----------------------------------------------------------------------
    def _store(self, kind: str, key: str, value: object) -> set[str]:
        """Store one entity; return the units whose records may have changed."""
        if kind == "app":
            return self._store_app(key, value)
        if kind == "app_task":
            old = self.tasks.pop(key, None)
            units = set()
            if old is not None:
                unindex(self._tasks_of_app, old.app_id, key)
                unindex(self._tasks_of_agent, old.agent_id or "", key)
                units.add(self._unit_of_app.get(old.app_id, old.app_id))
            if value is not None:
                self.tasks[key] = value
                self._tasks_of_app.setdefault(value.app_id, set()).add(key)
                self._tasks_of_agent.setdefault(value.agent_id or "", set()).add(key)
                units.add(self._unit_of_app.get(value.app_id, value.app_id))
            return {unit for unit in units if unit in self._apps_of_unit or unit in self._keys_of_unit}
        if kind == "agent":
            ip = canonical_ip(value.ip) if value is not None else None
            if self.agent_ips.get(key) == ip:
                return set()
            if ip is None:
                self.agent_ips.pop(key, None)
            else:
                self.agent_ips[key] = ip
            return {self._unit_of_app[self.tasks[t].app_id] for t in self._tasks_of_agent.get(key, ())
                    if self.tasks[t].app_id in self._unit_of_app}
        raise ValueError(f"unknown entity kind {kind!r}; expected one of {', '.join(KINDS)}")

    def _store_app(self, key: str, app: App | None) -> set[str]:
        units = set()
        old_unit = self._unit_of_app.pop(key, None)
        if old_unit is not None:
            unindex(self._apps_of_unit, old_unit, key)
            units.add(old_unit)
        self.apps.pop(key, None)
        if app is not None:
            unit = logical_id(app)
            self.apps[key] = app
            self._unit_of_app[key] = unit
            self._apps_of_unit.setdefault(unit, set()).add(key)
            units.add(unit)
        return units

    # -- derivation -----------------------------------------------------------------------
    def _rederive(self, unit: str) -> Changes:
        app_ids = sorted(self._apps_of_unit.get(unit, ()))
        apps = [self.apps[app_id] for app_id in app_ids]
        tasks = [self.tasks[t] for app in apps for t in self._tasks_of_app.get(app.id, ())]
        derived = services_of(apps, tasks, self.agent_ips, self.options)
        problems = tuple(derived.rejections)
        if problems != self.rejections.get(unit, ()):
            self._new_rejections.extend(problem for problem in problems
                                        if problem not in self.rejections.get(unit, ()))
        if problems:
            self.rejections[unit] = problems
        else:
            self.rejections.pop(unit, None)
        changes: Changes = {}
        for key in self._keys_of_unit.pop(unit, set()) - derived.services.keys():
            if self.records.pop(key, None) is not None:
                changes[key] = None
        for key, service in derived.services.items():
            if self.records.get(key) != service:
                self.records[key] = service
                changes[key] = service
        if derived.services:
            self._keys_of_unit[unit] = set(derived.services)
        return changes
