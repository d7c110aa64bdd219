"""The Mesos master's HTTP API: legacy /master/state and the v1 operator API at /api/v1.

Behaviour copied from Mesos 1.x: a non-leading master answers every request with
307 to the leader; /api/v1 insists on Content-Type and Accept; SUBSCRIBE is a chunked
RecordIO stream that opens with SUBSCRIBED, sends a HEARTBEAT right after it and then
every heartbeat interval, and carries an event for every change of the model.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from aiohttp import web

from simulator.render_mesos import HEARTBEAT, call_reply, dumps, master_frameworks, master_state, recordio, subscribed
from simulator.streams import MESOS

if TYPE_CHECKING:
    from simulator.server import Simulator

JSON = "application/json"
RECORDIO = "application/recordio"


def _text(status: int, message: str) -> web.Response:
    # Mesos answers API errors with a plain-text reason.
    return web.Response(status=status, text=message, content_type="text/plain")


def mesos_app(sim: "Simulator") -> web.Application:
    @web.middleware
    async def redirect_to_leader(request: web.Request, handler):
        if sim.leader_url:
            return web.Response(status=307, headers={"Location": sim.leader_url.rstrip("/") + request.path_qs})
        return await handler(request)

    async def state(request: web.Request) -> web.Response:
        fault = sim.faults.get("mesos_state")
        if fault is not None:
            return web.Response(status=fault["status"], body=fault["body"], content_type=fault["content_type"])
        return web.Response(body=dumps(master_state(sim.model)), content_type=JSON)

    async def frameworks(request: web.Request) -> web.Response:
        return web.Response(body=dumps(master_frameworks(sim.model)), content_type=JSON)

    async def api(request: web.Request) -> web.StreamResponse:
        if "Content-Type" not in request.headers:
            return _text(415, "Expecting 'Content-Type' to be present")
        if request.content_type != JSON:
            return _text(415, f"Expecting 'Content-Type' of {JSON} (the simulator speaks no protobuf), "
                              f"got '{request.content_type}'")
        accept = request.headers.get("Accept", "*/*")
        if not any(kind in accept for kind in (JSON, RECORDIO, "*/*")):
            return _text(406, f"Expecting 'Accept' to allow '{JSON}'")
        try:
            call = json.loads(await request.read() or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            return _text(400, f"Failed to parse body into JSON: {error}")
        if not isinstance(call, dict) or not isinstance(call.get("type"), str):
            return _text(400, "Failed to validate master::Call: Expecting 'type' to be present")
        if call["type"] == "SUBSCRIBE":
            return await subscribe(request, accept)
        reply = call_reply(sim.model, call["type"])
        if reply is None:
            return _text(400, f"Failed to validate master::Call: unknown or unsupported call type "
                              f"'{call['type']}'")
        return web.Response(body=dumps(reply), content_type=JSON)

    async def subscribe(request: web.Request, accept: str) -> web.StreamResponse:
        headers = {"Content-Type": JSON}
        if RECORDIO in accept and JSON not in accept:
            headers = {"Content-Type": RECORDIO, "Message-Content-Type": JSON}
        response = web.StreamResponse(status=200, headers=headers)
        response.enable_chunked_encoding()
        await response.prepare(request)
        # Snapshot and registration happen with no await in between, so the stream
        # neither misses nor repeats a change.
        first = recordio(dumps(subscribed(sim.model, sim.heartbeat_interval)))
        stream = sim.hub.open(MESOS)
        await sim.hub.serve(stream, request, response, recordio(dumps(HEARTBEAT)), beat_at_once=True, first=first)
        return response

    app = web.Application(middlewares=[redirect_to_leader])
    for path in ("/master/state", "/state", "/master/state.json", "/state.json"):
        app.router.add_get(path, state)
    for path in ("/master/frameworks", "/frameworks"):
        app.router.add_get(path, frameworks)
    for path in ("/api/v1", "/master/api/v1"):
        app.router.add_post(path, api)
    return app
