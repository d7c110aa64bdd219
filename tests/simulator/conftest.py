"""Fixtures for simulator tests: running simulators on ephemeral loopback ports, and
strict readers for the two stream formats (every read bounded by a timeout)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from simulator import Model, Simulator, load_model

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"
WAIT = 5.0


class RecordIOStream:
    """Reads `<length>\\n<json>` records, checking the length prefix exactly."""

    def __init__(self, response: aiohttp.ClientResponse):
        self.response = response

    async def raw_record(self) -> bytes:
        line = await asyncio.wait_for(self.response.content.readline(), WAIT)
        assert line.endswith(b"\n") and line[:-1].isdigit(), f"bad RecordIO length line {line!r}"
        return await asyncio.wait_for(self.response.content.readexactly(int(line)), WAIT)

    async def event(self, skip_heartbeats: bool = True) -> dict:
        while True:
            event = json.loads(await self.raw_record())
            if not (skip_heartbeats and event["type"] == "HEARTBEAT"):
                return event

    async def events(self, count: int) -> list[dict]:
        return [await self.event() for _ in range(count)]


class SSEStream:
    """Reads Marathon SSE frames: ('event type', data) or ('comment', None)."""

    def __init__(self, response: aiohttp.ClientResponse):
        self.response = response

    async def frame(self) -> tuple[str, dict | None]:
        lines = []
        while True:
            line = (await asyncio.wait_for(self.response.content.readline(), WAIT)).decode()
            assert line.endswith("\n"), f"stream ended mid-frame after {lines!r}"
            if line == "\n":
                break
            lines.append(line[:-1])
        if lines == [":"]:
            return "comment", None
        assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: "), lines
        kind, data = lines[0][len("event: "):], json.loads(lines[1][len("data: "):])
        assert data["eventType"] == kind
        return kind, data

    async def event(self) -> tuple[str, dict]:
        while True:
            kind, data = await self.frame()
            if kind != "comment":
                return kind, data

    async def events(self, count: int) -> list[tuple[str, dict]]:
        return [await self.event() for _ in range(count)]


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_read=WAIT)) as session:
        yield session


@pytest.fixture
async def start_sim():
    """start_sim(model=None, **Simulator kwargs) -> a started Simulator, stopped after the test."""
    started = []

    async def start(model: Model | None = None, **kwargs) -> Simulator:
        sim = Simulator(model if model is not None else Model(seed=7), **kwargs)
        await sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        await asyncio.wait_for(sim.stop(), WAIT)


@pytest.fixture
async def cluster(start_sim):
    """A simulator over state2.json (3 agents, a Marathon with one task), 0.2 s heartbeats."""
    model = load_model(FIXTURES / "mesos-state/state2.json", seed=7)
    return await start_sim(model, heartbeat_interval=0.2)


@pytest.fixture
async def subscribe(http):
    opened = []

    async def open_stream(sim: Simulator, **headers) -> RecordIOStream:
        response = await http.post(sim.mesos_url + "/api/v1", json={"type": "SUBSCRIBE"},
                                   headers={"Accept": "application/json", **headers})
        opened.append(response)
        assert response.status == 200, await response.text()
        return RecordIOStream(response)
    yield open_stream
    for response in opened:
        response.close()


@pytest.fixture
async def event_bus(http):
    opened = []

    async def open_stream(sim: Simulator, query: str = "") -> SSEStream:
        response = await http.get(sim.marathon_url + "/v2/events" + query,
                                  headers={"Accept": "text/event-stream"})
        opened.append(response)
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/event-stream")
        return SSEStream(response)
    yield open_stream
    for response in opened:
        response.close()


@pytest.fixture
def control(http):
    """control(sim, method, path, body=None) -> (status, json reply)."""
    async def call(sim: Simulator, method: str, path: str, body=None):
        kwargs = {} if body is None else {"json": body}
        async with http.request(method, sim.marathon_url + path, **kwargs) as response:
            return response.status, await response.json()
    return call
