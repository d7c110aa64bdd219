"""A node's local status endpoint (`wayfinder node --status-listen`): what its loops hold, for
`wayfinder vips --node` and for people, without replaying a topic.

- ``GET /v1/roles``: each loop's state (ready, complete, entries, passes, failures, last error);
- ``GET /v1/vips``: the desired VIP table as the node holds it (the l4lb loop's, or the vips
  loop of a dns node without l4lb), by topic key, with the loop's name and readiness.

It listens on ``HOST:PORT`` or on a unix socket (any value with a ``/``): a socket under the
node's runtime directory is only as reachable as its file permissions allow. The answers are
built on the event loop from the loops' own dicts (no copy to race with), a few ms for 10,000
VIPs with msgspec.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import msgspec
from aiohttp import web

from appliers.status_body import NodeVips  # in its own module so `wayfinder vips` can decode it without aiohttp
from runtime.reconcile import ReconcileLoop

log = logging.getLogger(__name__)

VIP_LOOPS = ("l4lb", "vips")  # which loop holds the VIP table, in order of preference


def is_unix_socket(listen: str) -> bool:
    return "/" in listen


class NodeStatusServer:
    def __init__(self, listen: str, loops: Mapping[str, ReconcileLoop]) -> None:
        self.listen, self.loops = listen, loops
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/v1/roles", self._roles)
        app.router.add_get("/v1/vips", self._vips)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        if is_unix_socket(self.listen):
            if os.path.exists(self.listen):
                os.unlink(self.listen)  # left by a node that did not stop cleanly
            site: web.BaseSite = web.UnixSite(self._runner, self.listen)
        else:
            host, _, port = self.listen.rpartition(":")
            site = web.TCPSite(self._runner, host.strip("[]"), int(port))
        await site.start()
        log.info("node status on %s (/v1/roles, /v1/vips)", self.listen)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _roles(self, request: web.Request) -> web.Response:
        body = {name: {"ready": loop.ready.is_set(), "complete": loop.complete, "entries": len(loop.desired),
                       "passes": loop.passes, "failures": loop.failures, "refused": loop.refused,
                       "last_error": loop.last_error}
                for name, loop in self.loops.items()}
        return web.Response(body=msgspec.json.encode(body), content_type="application/json")

    async def _vips(self, request: web.Request) -> web.Response:
        name = next((name for name in VIP_LOOPS if name in self.loops), None)
        if name is None:
            return web.json_response({"error": "this node holds no VIP table (it runs neither l4lb nor dns)"},
                                     status=404)
        loop = self.loops[name]
        body = NodeVips(role=name, ready=loop.ready.is_set(), vips=loop.desired)
        return web.Response(body=msgspec.json.encode(body), content_type="application/json")
