"""The simulator process: a Mesos master listener and a Marathon listener over one model.

`Simulator` owns the model, the open streams, the fault switches and the churn runs;
the API modules only translate HTTP to and from them. `publish` is the single place
where model changes become events on the wire.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from simulator import render_marathon, render_mesos
from simulator.control_api import add_control_routes
from simulator.loaders import model_from_texts
from simulator.marathon_api import add_marathon_routes
from simulator.mesos_api import mesos_app
from simulator.model import Change, Model
from simulator.streams import Hub

# Streams are closed before shutdown, so anything still running after this is stuck.
CONTROL_MAX_BODY_BYTES = 64 * 1024 * 1024
SHUTDOWN_TIMEOUT = 2.0


def _read(path: Path) -> tuple[str, str]:
    try:
        return str(path), Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text ({error.reason})") from None
    except OSError as error:
        raise ValueError(f"{path}: cannot read ({error.strerror})") from None


def load_model(mesos_state: Path | None = None, marathon_apps: Path | None = None,
               seed: int | None = None) -> Model:
    """Read either document, or both, into one consistent model (ValueError on bad input)."""
    return model_from_texts(mesos=_read(mesos_state) if mesos_state else None,
                            marathon=_read(marathon_apps) if marathon_apps else None, seed=seed)


def _url(address: tuple) -> str:
    host, port = address[0], address[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class Simulator:
    def __init__(self, model: Model, mesos_listen: tuple[str, int] = ("127.0.0.1", 0),
                 marathon_listen: tuple[str, int] = ("127.0.0.1", 0), leader_url: str | None = None,
                 heartbeat_interval: float = 15.0):
        self.model = model
        self.mesos_listen = mesos_listen
        self.marathon_listen = marathon_listen
        self.leader_url = leader_url
        self.heartbeat_interval = heartbeat_interval
        self.hub = Hub(heartbeat_interval)
        # Raw documents served instead of the model: {"mesos_state"|"marathon_apps": {...}}.
        self.faults: dict[str, dict] = {}
        self.churns: dict = {}
        self._runners: list[web.AppRunner] = []
        self._addresses: dict[str, tuple] = {}

    async def start(self) -> None:
        # Tests post apps with megabytes of labels (records over Kafka's size limit), over
        # aiohttp's default 1 MiB request bound.
        marathon = web.Application(client_max_size=CONTROL_MAX_BODY_BYTES)
        add_marathon_routes(marathon, self)
        add_control_routes(marathon, self)
        for name, app, listen in (("mesos", mesos_app(self), self.mesos_listen),
                                  ("marathon", marathon, self.marathon_listen)):
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
            await runner.setup()
            self._runners.append(runner)
            await web.TCPSite(runner, listen[0], listen[1]).start()
            self._addresses[name] = runner.addresses[0]
        self._fill_master_identity()

    def _fill_master_identity(self) -> None:
        """Documents without a master (v1, Marathon) get this listener as the master."""
        host, port = self._addresses["mesos"][:2]
        master = self.model.master
        master["hostname"] = master.get("hostname") or host
        master["port"] = master.get("port") or port
        master["pid"] = master.get("pid") or f"master@{host}:{port}"
        if "leader" not in master:
            master["leader"] = master["pid"]

    async def stop(self) -> None:
        for churn in list(self.churns.values()):
            await churn.stop()
        self.hub.drop()
        await asyncio.sleep(0)  # let the stream handlers see their Close
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()

    async def __aenter__(self) -> "Simulator":
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.stop()

    @property
    def mesos_url(self) -> str:
        return _url(self._addresses["mesos"])

    @property
    def marathon_url(self) -> str:
        return _url(self._addresses["marathon"])

    def publish(self, changes: list[Change]) -> None:
        """Send the events for a batch of changes to every open stream."""
        self.hub.publish_mesos(render_mesos.event_records(changes))
        self.hub.publish_marathon([(kind, render_marathon.sse(kind, data))
                                   for change in changes for kind, data in render_marathon.events(change)])
