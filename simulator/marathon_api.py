"""Marathon's HTTP API: /v2/apps, /v2/tasks and the /v2/events SSE bus.

As in Marathon 1.x: `/v2/apps` embeds tasks only with `embed=apps.tasks`, a single app
always embeds them, unknown apps are 404 `{"message": "App '/x' does not exist"}`, and
every subscriber sees `event_stream_attached` when any client attaches (subject to
its `event_type` filter).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
from aiohttp import web

from simulator.marathon_apps import normalize_app_id
from simulator.render_marathon import (KEEP_ALIVE, app_document, apps_document, attached,
                                       marathon_task, sse)
from simulator.streams import MARATHON

if TYPE_CHECKING:
    from simulator.server import Simulator

JSON = "application/json"


def json_response(document: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(document), status=status, content_type=JSON)


def add_marathon_routes(app: web.Application, sim: "Simulator") -> None:
    async def list_apps(request: web.Request) -> web.Response:
        fault = sim.faults.get("marathon_apps")
        if fault is not None:
            return web.Response(status=fault["status"], body=fault["body"], content_type=fault["content_type"])
        embed = request.query.getall("embed", [])
        return json_response(apps_document(sim.model, "apps.tasks" in embed))

    async def one_app(request: web.Request) -> web.Response:
        path = normalize_app_id(request.match_info["app_id"])
        wants_tasks = path.endswith("/tasks") and path[:-len("/tasks")] in sim.model.apps
        app_id = path[:-len("/tasks")] if wants_tasks else path
        app = sim.model.apps.get(app_id)
        if app is None:
            return json_response({"message": f"App '{app_id}' does not exist"}, status=404)
        if wants_tasks:
            return json_response({"tasks": [marathon_task(sim.model, t) for t in sim.model.app_tasks(app_id)]})
        return json_response({"app": app_document(sim.model, app, embed_tasks=True)})

    async def all_tasks(request: web.Request) -> web.Response:
        model = sim.model
        return json_response({"tasks": [marathon_task(model, t) for t in model.tasks.values()
                                        if model.is_marathon_task(t)]})

    async def info(request: web.Request) -> web.Response:
        return json_response({"name": "marathon", "version": "1.9.109", "elected": True,
                              "leader": request.host, "frameworkId": next(iter(sim.model.marathon_framework_ids()), None)})

    async def leader(request: web.Request) -> web.Response:
        return json_response({"leader": request.host})

    async def ping(request: web.Request) -> web.Response:
        return web.Response(text="pong")

    async def events(request: web.Request) -> web.StreamResponse:
        if "text/event-stream" not in request.headers.get("Accept", ""):
            return json_response({"message": "/v2/events needs 'Accept: text/event-stream'"}, status=406)
        filters = request.query.getall("event_type", [])
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream",
                                                           "Cache-Control": "no-cache"})
        await response.prepare(request)
        remote = request.remote or ""
        stream = sim.hub.open(MARATHON, frozenset(filters) if filters else None)
        kind, data = attached(remote, sim.model.clock())
        sim.hub.publish_marathon([(kind, sse(kind, data))])
        try:
            await sim.hub.serve(stream, request, response, KEEP_ALIVE, beat_at_once=False)
        finally:
            kind, data = attached(remote, sim.model.clock(), detached=True)
            sim.hub.publish_marathon([(kind, sse(kind, data))])
        return response

    app.router.add_get("/v2/apps", list_apps)
    app.router.add_get("/v2/apps/{app_id:.+}", one_app)
    app.router.add_get("/v2/tasks", all_tasks)
    app.router.add_get("/v2/events", events)
    app.router.add_get("/v2/info", info)
    app.router.add_get("/v2/leader", leader)
    app.router.add_get("/ping", ping)
