"""Fault injection for producer tests: raw bytes, replaced documents, silence, drops."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from simulator import load_model
from tests.simulator.conftest import FIXTURES, WAIT
from tests.simulator.test_mesos_api import WEB


@pytest.fixture
async def quiet_cluster(start_sim):
    """state2.json with a 30 s heartbeat, so no heartbeat lands in the middle of a test."""
    return await start_sim(load_model(FIXTURES / "mesos-state/state2.json", seed=7), heartbeat_interval=30)


async def test_raw_bytes_go_into_every_subscribe_stream(quiet_cluster, http, subscribe):
    streams = [await subscribe(quiet_cluster) for _ in range(2)]
    for stream in streams:
        assert (await stream.event(skip_heartbeats=False))["type"] == "SUBSCRIBED"
        assert (await stream.event(skip_heartbeats=False))["type"] == "HEARTBEAT"
    truncated = b'40\n{"type":"TASK_UPDATED","task_upd'
    async with http.post(quiet_cluster.marathon_url + "/sim/faults/mesos-stream", data=truncated) as response:
        assert await response.json() == {"streams": 2, "bytes": len(truncated)}
    for stream in streams:
        got = await asyncio.wait_for(stream.response.content.readexactly(len(truncated)), WAIT)
        assert got == truncated


async def test_raw_bytes_go_into_the_event_bus(quiet_cluster, http, event_bus):
    stream = await event_bus(quiet_cluster)
    assert (await stream.event())[0] == "event_stream_attached"
    raw = b"event: mystery_event\ndata: {not json\n\n"
    async with http.post(quiet_cluster.marathon_url + "/sim/faults/marathon-stream", data=raw) as response:
        assert (await response.json())["streams"] == 1
    assert await asyncio.wait_for(stream.response.content.readexactly(len(raw)), WAIT) == raw


async def test_replaced_documents_and_restore(quiet_cluster, http):
    url = quiet_cluster.marathon_url
    async with http.put(url + "/sim/faults/mesos-state", data=b'{"frameworks": [') as response:
        assert response.status == 200
    for path in ("/master/state", "/state"):
        async with http.get(quiet_cluster.mesos_url + path) as response:
            assert (response.status, await response.read()) == (200, b'{"frameworks": [')
    async with http.put(url + "/sim/faults/marathon-apps?status=503", data=b"Marathon is reloading") as response:
        assert response.status == 200
    async with http.get(url + "/v2/apps?embed=apps.tasks") as response:
        assert (response.status, await response.read()) == (503, b"Marathon is reloading")
    for path in ("/sim/faults/mesos-state", "/sim/faults/marathon-apps"):
        async with http.delete(url + path) as response:
            assert (await response.json())["active"] is False
    async with http.get(quiet_cluster.mesos_url + "/master/state") as response:
        assert (await response.json())["leader"] == "master@10.0.5.163:5050"
    async with http.get(url + "/v2/apps") as response:
        assert [a["id"] for a in (await response.json())["apps"]] == ["/sleep"]


async def test_silence_keeps_the_connection_but_sends_nothing(cluster, http, subscribe, event_bus, control):
    assert await control(cluster, "POST", "/sim/faults/silence", {"mesos": True}) == (
        200, {"silenced": {"mesos": True, "marathon": False}})
    mesos = await subscribe(cluster)
    assert (await mesos.event(skip_heartbeats=False))["type"] == "SUBSCRIBED"
    marathon = await event_bus(cluster, "?event_type=status_update_event")
    await control(cluster, "POST", "/sim/apps", dict(WEB, instances=1))
    assert [d["taskStatus"] for _, d in await marathon.events(2)] == ["TASK_STAGING", "TASK_RUNNING"]
    with pytest.raises(asyncio.TimeoutError):  # 0.2 s heartbeats, yet nothing for 0.6 s
        await asyncio.wait_for(mesos.response.content.readline(), 0.6)
    await control(cluster, "POST", "/sim/faults/silence", {"mesos": False})
    assert json.loads(await mesos.raw_record()) == {"type": "HEARTBEAT"}
    assert (await control(cluster, "POST", "/sim/faults/silence", {"mesos": "yes"}))[0] == 400


async def test_drop_streams_ends_them(quiet_cluster, http, subscribe, event_bus, control):
    mesos = await subscribe(quiet_cluster)
    marathon = await event_bus(quiet_cluster)
    await mesos.event(skip_heartbeats=False)
    await mesos.event(skip_heartbeats=False)
    await marathon.event()
    assert await control(quiet_cluster, "POST", "/sim/faults/drop-streams") == (200, {"dropped": 2})
    assert await asyncio.wait_for(mesos.response.content.read(), WAIT) == b""
    assert await asyncio.wait_for(marathon.response.content.read(), WAIT) == b""
    assert (await control(quiet_cluster, "GET", "/sim/state"))[1]["streams"] == {"mesos": 0, "marathon": 0}


async def test_drop_streams_reset_breaks_the_chunked_body(quiet_cluster, subscribe, control):
    mesos = await subscribe(quiet_cluster)
    await mesos.event(skip_heartbeats=False)
    await mesos.event(skip_heartbeats=False)
    assert await control(quiet_cluster, "POST", "/sim/faults/drop-streams", {"side": "mesos", "mode": "reset"}) == (
        200, {"dropped": 1})
    with pytest.raises(aiohttp.ClientPayloadError):
        await asyncio.wait_for(mesos.response.content.read(), WAIT)
