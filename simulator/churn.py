"""Random launches and kills at a fixed rate, for load and convergence tests.

A launch scales an app up by one; a kill stops a random task of it and scales it down
by one, so `instances` always matches what runs. Operations are paced against the
loop clock and catch up after a slow step, so the achieved rate stays the asked rate.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from simulator import operations
from simulator.model import key_of
from simulator.operations import OperationError
from simulator.render_control import stamps

if TYPE_CHECKING:
    from simulator.server import Simulator

log = logging.getLogger(__name__)

CHURN_APP = "/churn"
MAX_RATE = 10000.0
MAX_SECONDS = 3600.0


class Churn:
    def __init__(self, sim: "Simulator", churn_id: str, rate: float, seconds: float, app_id: str | None):
        self.sim = sim
        self.id = churn_id
        self.rate = rate
        self.seconds = seconds
        self.app_id = app_id
        self.operations = 0
        self.changes: list[dict] = []
        self.error: str | None = None
        self.task: asyncio.Task | None = None
        self._app_ids: list[str] = []  # model.apps sorted (the random choice must not depend on dict order)
        self._app_set: set[str] = set()

    @classmethod
    def from_request(cls, sim: "Simulator", body: Any) -> "Churn":
        if not isinstance(body, dict):
            raise OperationError(400, "body must be {\"rate\": ops per second, \"seconds\": duration}")
        rate, seconds, app_id = body.get("rate"), body.get("seconds"), body.get("app")
        for name, value, limit in (("rate", rate, MAX_RATE), ("seconds", seconds, MAX_SECONDS)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value <= limit:
                raise OperationError(400, f"'{name}' must be a number in (0, {limit}]")
        if app_id is not None:
            app_id = "/" + str(app_id).strip("/")
            if app_id not in sim.model.apps:
                raise OperationError(404, f"App '{app_id}' does not exist")
        if not sim.model.agents:
            raise OperationError(400, "no agents to churn on; POST /sim/agents first")
        return cls(sim, sim.model.new_uuid(), float(rate), float(seconds), app_id)

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task and not self.task.done():
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def report(self) -> dict:
        return {"id": self.id, "running": self.running, "rate": self.rate, "seconds": self.seconds,
                "app": self.app_id, "operations": self.operations, "error": self.error,
                "changes": list(self.changes)}

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        total = int(self.rate * self.seconds)
        for n in range(total):
            # Always yield, even when behind: the event streams to the producer are written by
            # this same loop, and a churn that never yields holds every event back until it ends.
            await asyncio.sleep(max(0.0, start + n / self.rate - loop.time()))
            try:
                self._step()
            except OperationError as problem:
                self.error = problem.message
                return
            except Exception as problem:  # a background run has no caller to raise to
                log.exception("churn %s stopped", self.id)
                self.error = f"{type(problem).__name__}: {problem}"
                return
            self.operations += 1

    def _sorted_apps(self) -> list[str]:
        """The app ids in order, sorted again only when the set of apps changed (sorting 10,000
        ids on every operation cost more than the operation)."""
        apps = self.sim.model.apps
        if self._app_set != apps.keys():  # a C-level comparison, far cheaper than the sort
            self._app_set = set(apps)
            self._app_ids = sorted(self._app_set)
        return self._app_ids

    def _step(self) -> None:
        model = self.sim.model
        source = {"client_ip": "127.0.0.1", "uri": "/v2/apps"}
        changes = []
        app_id = self.app_id or (model.rng.choice(self._sorted_apps()) if model.apps else None)
        if app_id is None or app_id not in model.apps:
            app_id = app_id or CHURN_APP
            changes += operations.put_app(model, {"id": app_id, "instances": 0, "cmd": "sleep 3600",
                                                  "cpus": 0.01, "mem": 32}, source)
        tasks = model.app_tasks(app_id)
        if tasks and model.rng.random() < 0.5:
            victim = model.rng.choice(tasks)
            changes += operations.kill_task(model, key_of(victim), scale=True)
        else:
            app = model.apps[app_id]
            changes += operations.scale_app(model, app_id, app.get("instances", 0) + 1, source)
        self.sim.publish(changes)
        self.changes.extend(stamps(changes))
