"""The simulator's own control API (JSON over HTTP, on the Marathon listener).

Every reply that changed the cluster lists the changes, each stamped with the
wall-clock time the model changed (taken before any event went out), so a test can
compute end-to-end latency against what it later observes downstream.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable

from aiohttp import web

from simulator import operations
from simulator.churn import Churn
from simulator.marathon_api import json_response
from simulator.model import Change
from simulator.render_control import stamps
from simulator.operations import OperationError
from simulator.overlays import parse_overlays
from simulator.streams import MARATHON, MESOS

if TYPE_CHECKING:
    from simulator.server import Simulator


def error(status: int, message: str) -> web.Response:
    return json_response({"message": message}, status=status)


async def read_json(request: web.Request, default: Any = None) -> Any:
    raw = await request.read()
    if not raw.strip():
        return default
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as problem:
        raise OperationError(400, f"body is not valid JSON: {problem}")


def add_control_routes(app: web.Application, sim: "Simulator") -> None:
    def source(request: web.Request, app_id: str | None) -> dict:
        uri = f"/v2/apps{app_id}" if app_id else "/v2/apps"
        return {"client_ip": request.remote, "uri": uri}

    def apply(operation: Callable[[], list[Change]]) -> web.Response:
        try:
            changes = operation()
        except OperationError as problem:
            return error(problem.status, problem.message)
        sim.publish(changes)
        return json_response({"changes": stamps(changes)})

    async def post_app(request: web.Request) -> web.Response:
        try:
            body = await read_json(request)
        except OperationError as problem:
            return error(problem.status, problem.message)
        # Marathon reports a create as a POST to /v2/apps.
        return apply(lambda: operations.put_app(sim.model, body, source(request, None)))

    async def scale_app(request: web.Request) -> web.Response:
        app_id = "/" + request.match_info["app_id"].strip("/")
        return apply(lambda: operations.scale_app(sim.model, app_id, request.match_info["n"],
                                                  source(request, app_id)))

    async def delete_app(request: web.Request) -> web.Response:
        return apply(lambda: operations.delete_app(sim.model, request.match_info["app_id"]))

    def task_named(request: web.Request) -> str:
        """The key of the task the path names; ``?framework_id=`` picks one of several frameworks'
        tasks of the same id (Mesos keeps task ids unique per framework only)."""
        return operations.find_task(sim.model, request.match_info["task_id"], request.query.get("framework_id"))

    async def kill_task(request: web.Request) -> web.Response:
        scale = request.query.get("scale", "false").lower() == "true"
        return apply(lambda: operations.kill_task(sim.model, task_named(request), scale=scale))

    async def fail_task(request: web.Request) -> web.Response:
        return apply(lambda: operations.fail_task(sim.model, task_named(request)))

    async def task_health(request: web.Request) -> web.Response:
        try:
            body = await read_json(request, {})
        except OperationError as problem:
            return error(problem.status, problem.message)

        def change_health() -> list[Change]:
            healthy = operations.health_body(body)  # a bad body is a 400, whatever the task
            return operations.set_health(sim.model, task_named(request), healthy)
        return apply(change_health)

    async def post_agent(request: web.Request) -> web.Response:
        try:
            body = await read_json(request, {})
        except OperationError as problem:
            return error(problem.status, problem.message)
        if not isinstance(body, dict):
            return error(400, "body must be a JSON object like {\"hostname\": \"10.0.0.9\"}")
        return apply(lambda: operations.add_agent(sim.model, body))

    async def delete_agent(request: web.Request) -> web.Response:
        return apply(lambda: operations.remove_agent(sim.model, request.match_info["agent_id"]))

    async def put_agent_overlays(request: web.Request) -> web.Response:
        """The agent's overlay subnets (simulator/overlays.py): later launches there use them."""
        agent_id = request.match_info["agent_id"]
        if agent_id not in sim.model.agents:
            return error(404, f"agent {agent_id} does not exist")
        try:
            overlays = parse_overlays(await read_json(request, {}))
        except OperationError as problem:
            return error(problem.status, problem.message)
        except ValueError as problem:
            return error(400, str(problem))
        if overlays:
            sim.model.agent_overlays[agent_id] = overlays
        else:
            sim.model.agent_overlays.pop(agent_id, None)
        return json_response({"agent_id": agent_id, "overlays": overlays})

    async def state(request: web.Request) -> web.Response:
        summary = sim.model.summary()
        summary["streams"] = {side: len(sim.hub.of(side)) for side in (MESOS, MARATHON)}
        summary["silenced"] = dict(sim.hub.silenced)
        return json_response(summary)

    # -- churn -------------------------------------------------------------------------

    async def start_churn(request: web.Request) -> web.Response:
        try:
            body = await read_json(request, {})
            churn = Churn.from_request(sim, body)
        except OperationError as problem:
            return error(problem.status, problem.message)
        sim.churns[churn.id] = churn
        churn.start()
        return json_response(churn.report())

    def find_churn(request: web.Request) -> Churn | None:
        return sim.churns.get(request.match_info["churn_id"])

    async def get_churn(request: web.Request) -> web.Response:
        churn = find_churn(request)
        return json_response(churn.report()) if churn else error(404, "no such churn")

    async def stop_churn(request: web.Request) -> web.Response:
        churn = find_churn(request)
        if churn is None:
            return error(404, "no such churn")
        await churn.stop()
        return json_response(churn.report())

    # -- faults ------------------------------------------------------------------------

    def inject(side: str) -> Callable:
        async def handler(request: web.Request) -> web.Response:
            raw = await request.read()
            return json_response({"streams": sim.hub.inject(side, raw), "bytes": len(raw)})
        return handler

    def replace_document(key: str) -> Callable:
        async def put(request: web.Request) -> web.Response:
            status = request.query.get("status", "200")
            if not status.isdigit():
                return error(400, "status must be an HTTP status code")
            sim.faults[key] = {"body": await request.read(), "status": int(status),
                               "content_type": request.query.get("content_type", "application/json")}
            return json_response({"fault": key, "active": True})

        async def delete(request: web.Request) -> web.Response:
            sim.faults.pop(key, None)
            return json_response({"fault": key, "active": False})
        return put, delete

    async def silence(request: web.Request) -> web.Response:
        try:
            body = await read_json(request, {})
        except OperationError as problem:
            return error(problem.status, problem.message)
        if not isinstance(body, dict) or not all(isinstance(body.get(s, False), bool) for s in (MESOS, MARATHON)):
            return error(400, "body must be {\"mesos\": true|false, \"marathon\": true|false}")
        for side in (MESOS, MARATHON):
            if side in body:
                sim.hub.silenced[side] = body[side]
        return json_response({"silenced": dict(sim.hub.silenced)})

    async def drop_streams(request: web.Request) -> web.Response:
        try:
            body = await read_json(request, {})
        except OperationError as problem:
            return error(problem.status, problem.message)
        body = body if isinstance(body, dict) else {}
        side = body.get("side")
        if side not in (None, MESOS, MARATHON):
            return error(400, "side must be 'mesos' or 'marathon'")
        return json_response({"dropped": sim.hub.drop(side, reset=body.get("mode") == "reset")})

    router = app.router
    router.add_post("/sim/apps", post_app)
    router.add_put(r"/sim/apps/{app_id:.+}/instances/{n:-?\d+}", scale_app)
    router.add_delete("/sim/apps/{app_id:.+}", delete_app)
    router.add_delete("/sim/tasks/{task_id}", kill_task)
    router.add_post("/sim/tasks/{task_id}/fail", fail_task)
    router.add_post("/sim/tasks/{task_id}/health", task_health)
    router.add_post("/sim/agents", post_agent)
    router.add_delete("/sim/agents/{agent_id}", delete_agent)
    router.add_put("/sim/agents/{agent_id}/overlays", put_agent_overlays)
    router.add_get("/sim/state", state)
    router.add_post("/sim/churn", start_churn)
    router.add_get("/sim/churn/{churn_id}", get_churn)
    router.add_delete("/sim/churn/{churn_id}", stop_churn)
    router.add_post("/sim/faults/mesos-stream", inject(MESOS))
    router.add_post("/sim/faults/marathon-stream", inject(MARATHON))
    for key, path in (("mesos_state", "mesos-state"), ("marathon_apps", "marathon-apps")):
        put, delete = replace_document(key)
        router.add_put(f"/sim/faults/{path}", put)
        router.add_delete(f"/sim/faults/{path}", delete)
    router.add_post("/sim/faults/silence", silence)
    router.add_post("/sim/faults/drop-streams", drop_streams)
