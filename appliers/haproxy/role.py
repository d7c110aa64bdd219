"""The `haproxy` node role: the `haproxy` table in, this node's HAProxy brought to serve it.

On the node's reconcile loop (runtime.reconcile) like every role: catch-up, readiness,
batching. Its target is one HAProxy in master-worker mode (process.py). A pass that only
changes who sits behind a backend (a task up or down, its health, a drain) goes through the
runtime API into the backend's pre-allocated slots; only a structural change (a new frontend,
backend, rule or setting, or a backend outgrowing its slots) renders the config again, checks
it and reloads. Every record a pass applies is one batch, so a burst of changes costs one
reload at most.

HAProxy's config is one document: the role always plans the whole table. Before the role is
complete (it may hold only part of the table), a service it served keeps being served until
the table is complete, as other roles keep what they would otherwise prune.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from appliers.haproxy.certificate import ensure_certificate
from appliers.haproxy.directory_lock import DirectoryLock
from appliers.haproxy.process import HaproxyError, HaproxyProcess, converge
from appliers.haproxy.settings import HaproxySettings
from appliers.haproxy.slots import Applied, Plan, plan as plan_slots, plan_members
from runtime.reconcile import Role, Scope
from schemas import codec
from schemas.haproxy import Service

log = logging.getLogger(__name__)

# At most one reload a second: the changes that arrive meanwhile go into the next one.
MIN_RELOAD_INTERVAL_S = 1.0
# A service whose port another process holds is left out for this long, then tried again
# (the loop's periodic pass brings it back), so one taken port never stops the others.
UNBINDABLE_RETRY_S = 30.0
# Reload attempts in one pass: each failed one leaves out the frontends that could not bind.
BIND_ATTEMPTS = 3


@dataclass(frozen=True)
class Served:
    """What this node's HAProxy runs: its structure and slots, and the services it came from."""

    applied: Applied | None
    services: Mapping[str, Service]


@dataclass(frozen=True)
class Pass:
    """One pass's change: the step from what runs, and every service it leads to, by key."""

    step: Plan
    services: Mapping[str, Service]


class HaproxyRole(Role[Service, Served, Pass]):
    name = "haproxy"
    threaded = True  # haproxy -c, the reload and the runtime API block

    def __init__(self, settings: HaproxySettings, process: HaproxyProcess | None = None, *,
                 min_reload_interval: float = MIN_RELOAD_INTERVAL_S,
                 monotonic: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.process = process or HaproxyProcess(settings)
        # Held from open to close: another node on this directory is refused (directory_lock.py).
        self.directory_lock = DirectoryLock(settings.directory)
        self.min_reload_interval = min_reload_interval
        self._monotonic, self._sleep = monotonic, sleep
        self._applied: Applied | None = None
        self._services: dict[str, Service] = {}
        self._left_out: frozenset[tuple[str, str]] = frozenset()
        self._last_reload = float("-inf")
        self._unbindable: dict[str, float] = {}  # backend -> until when it is left out
        self.reloads = 0  # passes that rendered and swapped the config (the first start too)
        self.runtime_passes = 0  # passes that changed servers through the runtime API only

    def decode(self, key: str, value: bytes) -> Service:
        return codec.decode(value, Service)  # a ValidationError is a ValueError: refused

    def observe(self, scope: Scope) -> Served:
        # HAProxy is started and reloaded by this role only: once it is not running, nothing
        # of what was applied serves any more, and the next plan starts from the config.
        now = self._monotonic()  # a port left out long enough is tried again in this pass
        self._unbindable = {backend: until for backend, until in self._unbindable.items() if until > now}
        if not self.process.running:
            return Served(None, {})
        return Served(self._applied, self._services)

    def plan(self, desired: Mapping[str, Service], actual: Served, scope: Scope) -> Pass | None:
        """The changed services alone when only their servers changed (the usual case: a task
        up or down, its health), else the whole config."""
        if actual.applied is not None and scope.keys is not None:
            changed = {key: desired.get(key) if scope.may_remove else desired.get(key, actual.services.get(key))
                       for key in scope.keys}
            step = plan_members(actual.applied, actual.services, changed, self.settings)
            if step is not None:
                if not step.commands:
                    return None
                return Pass(step, {**actual.services, **changed})
        services = dict(desired) if scope.may_remove else {**actual.services, **desired}
        step = plan_slots(actual.applied, self._wanted(services), self.settings)
        if actual.applied is not None and step.converged and services == actual.services:
            return None
        return Pass(step, services)

    def apply(self, change: Pass) -> None:
        step: Plan | None = change.step
        for attempt in range(BIND_ATTEMPTS):
            served = self._wanted(change.services)
            if step is None or step.reload:  # no step: planned again after a failed reload
                self._wait_for_reload_slot()
            try:
                result = converge(self.process, self._applied, served, step)
                break
            except HaproxyError as error:
                if not error.unbindable or attempt == BIND_ATTEMPTS - 1:
                    raise
                self._last_reload = self._monotonic()
                for backend in error.unbindable:
                    log.warning("haproxy: frontend %s cannot bind its port (another process holds it); "
                                "left out for %.0fs", backend, UNBINDABLE_RETRY_S)
                    self._unbindable[backend] = self._monotonic() + UNBINDABLE_RETRY_S
                step = None  # plan again without them
        self._applied = result.applied
        self._services = dict(change.services)
        if result.action in ("started", "reloaded"):
            self.reloads += 1
            self._last_reload = self._monotonic()
            log.info("haproxy: %s (%s)", result.action, result.plan.reload_reason or "first start")
        elif result.action == "runtime":
            self.runtime_passes += 1
        if result.fallback:
            log.warning("haproxy: a runtime command was refused (%s); reloaded instead", result.fallback)
        if result.plan.reload or result.action == "started":  # a whole-config plan: it knows what is left out
            left_out = frozenset((item.key, item.reason) for item in result.plan.left_out)
            for key, reason in sorted(left_out - self._left_out):
                log.warning("haproxy: service %s is not served: %s", key, reason)
            self._left_out = left_out

    def _wanted(self, services: Mapping[str, Service]) -> list[Service]:
        """Every service in key order, but those whose port another process holds."""
        return [services[key] for key in sorted(services) if services[key].backend not in self._unbindable]

    def _wait_for_reload_slot(self) -> None:
        """Before a reload, wait out the rest of the minimum interval since the last one: the
        loop reads no record meanwhile, so everything that arrives goes into the next pass."""
        if self._applied is None:
            return
        wait = self._last_reload + self.min_reload_interval - self._monotonic()
        if wait > 0:
            self._sleep(min(wait, self.min_reload_interval))

    @property
    def left_out_unbindable(self) -> list[str]:
        """The backends left out because another process holds their port."""
        return sorted(self._unbindable)

    async def open(self) -> None:
        Path(self.settings.directory).mkdir(parents=True, exist_ok=True)
        self.directory_lock.acquire()  # first: before anything in the directory is touched
        await asyncio.to_thread(ensure_certificate, self.settings)

    async def close(self) -> None:
        # Also called when open failed: the lock is then not ours, and neither is any HAProxy
        # there (this role's process only stops what it started).
        try:
            await asyncio.to_thread(self.process.stop)
        finally:
            self.directory_lock.release()
