"""A running simulator -> producer -> Kafka pipeline for integration tests.

Each pipeline gets its own topic namespace, so tests share one broker without seeing each
other's records. Everything runs in the test's event loop; Kafka reads go to a thread.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import aiohttp
import orjson

from processors.app import Processor
from producers.run import ProducerOptions, Producers
from runtime.kafka.reader import read_table, read_to_end
from schemas.catalog import Catalog
from simulator.server import Simulator, load_model


def new_catalog() -> Catalog:
    return Catalog(f"t{uuid.uuid4().hex[:10]}")


class RunningProducer:
    def __init__(self, options: ProducerOptions):
        self.producers = Producers(options)
        self.stop = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> RunningProducer:
        started = asyncio.Event()
        self._task = asyncio.create_task(self.producers.run(self.stop, started))
        await asyncio.wait_for(started.wait(), 60)
        await asyncio.wait_for(asyncio.gather(*(loop.connected.wait() for loop in self.producers.loops)), 30)
        return self

    async def __aexit__(self, *exc) -> None:
        self.stop.set()
        await asyncio.wait_for(self._task, 60)


class RunningProcessor:
    def __init__(self, pipeline: Pipeline, **options):
        self.processor = Processor(pipeline.bootstrap, pipeline.catalog, **options)
        self.stop = asyncio.Event()

    async def __aenter__(self):
        started = asyncio.Event()
        self.task = asyncio.create_task(self.processor.run(self.stop, started))
        await asyncio.wait_for(started.wait(), 90)
        return self

    async def __aexit__(self, *exc):
        self.stop.set()
        await asyncio.wait_for(self.task, 60)


class Pipeline:
    """Simulator (loaded from documents) + producer, on a fresh namespace of a real Kafka."""

    def __init__(self, bootstrap: str, mesos_state: Path | None = None, marathon_apps: Path | None = None,
                 heartbeat: float = 15.0, **producer_options):
        self.bootstrap = bootstrap
        self.catalog = new_catalog()
        self.simulator = Simulator(load_model(mesos_state, marathon_apps), heartbeat_interval=heartbeat)
        self._producer_options = producer_options
        self.producer: RunningProducer | None = None
        self.http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Pipeline:
        await self.simulator.start()
        self.http = aiohttp.ClientSession()
        await self.start_producer()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop_producer()
        await self.http.close()
        await self.simulator.stop()

    def options(self, **overrides) -> ProducerOptions:
        settings = {"mesos_url": self.simulator.mesos_url, "marathon_url": self.simulator.marathon_url}
        settings.update(self._producer_options)
        settings.update(overrides)
        return ProducerOptions(bootstrap=self.bootstrap, catalog=self.catalog, **settings)

    async def start_producer(self, **overrides) -> None:
        self.producer = RunningProducer(self.options(**overrides))
        await self.producer.__aenter__()

    async def stop_producer(self) -> None:
        if self.producer:
            await self.producer.__aexit__(None, None, None)
            self.producer = None

    # -- the simulator's control API --------------------------------------------------------
    async def control(self, method: str, path: str, body=None, raw: bytes | None = None) -> dict:
        data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
        async with self.http.request(method, self.simulator.marathon_url + path, data=data) as response:
            text = await response.read()
            assert response.status < 300, f"{method} {path}: {response.status} {text[:300]!r}"
            return orjson.loads(text) if text else {}

    # -- reading Kafka ----------------------------------------------------------------------
    async def table(self, alias: str) -> dict[str, dict]:
        values = await asyncio.to_thread(read_table, self.bootstrap, self.catalog.topic(alias).name)
        return {key: orjson.loads(value) for key, value in values.items()}

    async def tasks_by_id(self) -> dict[str, dict]:
        """The tasks table by bare task id: each test cluster here runs a task id in one
        framework only (tests/integration/test_task_keys.py reads the real keys)."""
        return {value["id"]: value for value in (await self.table("tasks")).values()}

    async def log(self, alias: str) -> list:
        return await asyncio.to_thread(read_to_end, self.bootstrap, self.catalog.topic(alias).name)

    async def values(self, alias: str) -> list[dict]:
        return [orjson.loads(r.value) for r in await self.log(alias) if r.value is not None]

    async def eventually(self, read: Callable, check: Callable[[object], bool], timeout: float = 15.0):
        """Read until ``check`` holds (returns the value) or fail with the last value seen."""
        deadline = time.monotonic() + timeout
        while True:
            value = await read()
            if check(value) or time.monotonic() > deadline:
                assert check(value), f"condition never held; last value: {str(value)[:2000]}"
                return value
            await asyncio.sleep(0.2)

    async def end_offsets(self) -> dict[str, int]:
        """Records ever written to each topic of this pipeline's namespace."""
        return {t.alias: len(await self.log(t.alias)) for t in self.catalog.topics}


def task_id_of(event: dict) -> str:
    """The bare task id a history event is about: a Mesos task event is keyed by the tasks
    key (<framework id>/<task id>) and carries the id in its fields; a Marathon one is keyed by it."""
    return event["fields"].get("task_id") or event["id"]


def changes_of(reply: dict, kind: str = "task_state", state: str | None = None) -> list[dict]:
    return [c for c in reply["changes"] if c["kind"] == kind and (state is None or c.get("state") == state)]
