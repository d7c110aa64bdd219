"""The node's Mesos-DNS compatible HTTP API: aiohttp on one host:port, the only I/O of the
`mesos_api` views.

Routes as Mesos-DNS registers them: GET `/v1/version`, `/v1/config`, `/v1/hosts/{host}`,
`/v1/hosts/{host}/ports` (501, as Mesos-DNS: never implemented), `/v1/services/{service}`,
and, only while enumeration is on (Mesos-DNS `EnumerationOn`), `/v1/enumerate` and
`/v1/axfr`. Any other path is 404 and any other method 405, with Mesos-DNS's plain-text
bodies. JSON answers are `application/json`.

The record table is read when a request arrives, so answers follow the node's table live.
hosts and services are dictionary lookups answered on the event loop. enumerate and axfr walk
the whole table: the loop takes a shallow copy (the table changes only on the loop, so the
copy is consistent) and one worker thread builds and encodes the document, so a large table
does not hold up the DNS server sharing this loop for the whole walk.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

import orjson
from aiohttp import web

from appliers.dns.mesos_api import (
    MesosDnsConfig,
    Table,
    axfr_view,
    config_view,
    enumerate_view,
    hosts_view,
    services_view,
    version_view,
)

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT = 2.0  # requests are short; anything still open after this is stuck
_BODIES = {404: "404: Page Not Found", 405: "405: Method Not Allowed"}  # Mesos-DNS's texts


class MesosDnsHttpServer:
    """`MesosDnsHttpServer(records, "127.0.0.1", 8123)`; `await start()`, `await stop()`.

    records: the node's table (`<name>/<type>` -> RecordSet), or a zero-argument callable
        returning it, read on every request.
    config: the values `/v1/config` reports (domain, ttl, resolvers, ...); its HTTP listener
        and port are filled in from where this server really listens.
    enumeration: serve `/v1/enumerate` and `/v1/axfr`; None takes `config.enumeration_on`.
    serial: a zero-argument callable giving the zone's SOA serial (the node's
        `lambda: zones.serial`); without one, the unix time at construction, which is what
        Mesos-DNS uses until its first reload.
    task_names: task id -> Mesos task name, for `/v1/enumerate`, when the node has them.
    """

    def __init__(self, records: Table | Callable[[], Table], host: str = "127.0.0.1", port: int = 8123, *,
                 config: MesosDnsConfig | None = None, enumeration: bool | None = None,
                 serial: Callable[[], int] | None = None, task_names: Mapping[str, str] | None = None,
                 version: str | None = None, reuse_port: bool = False):
        self.reuse_port = reuse_port  # DNS workers share one port (appliers/dns/workers.py)
        self._records: Callable[[], Table] = records if callable(records) else (lambda: records)
        self.host, self.port = host, port
        config = config or MesosDnsConfig()
        if enumeration is not None:
            config = dataclasses.replace(config, enumeration_on=enumeration)
        self.config = config
        started = int(time.time())
        self._serial: Callable[[], int] = serial or (lambda: started)
        self._task_names = task_names
        self._version = version
        self._runner: web.AppRunner | None = None
        self._walker: ThreadPoolExecutor | None = None
        self.address: tuple | None = None

    async def start(self) -> None:
        app = web.Application(middlewares=[_mesos_dns_errors])
        routes = [
            ("/v1/version", self._version_handler),
            ("/v1/config", self._config_handler),
            ("/v1/hosts/{host}", self._hosts_handler),
            ("/v1/hosts/{host}/ports", _ports_handler),
            ("/v1/services/{service}", self._services_handler),
        ]
        if self.config.enumeration_on:
            routes += [("/v1/enumerate", self._enumerate_handler), ("/v1/axfr", self._axfr_handler)]
        for path, handler in routes:
            app.router.add_get(path, handler, allow_head=False)  # GET only, as Mesos-DNS
        self._walker = ThreadPoolExecutor(1, "mesos-dns-http")
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self.host, self.port, reuse_port=self.reuse_port or None).start()
        except BaseException:
            await self.stop()
            raise
        self.address = self._runner.addresses[0]
        listen_host, listen_port = self.address[:2]
        self.config = dataclasses.replace(self.config, http_listener=listen_host, http_port=listen_port)
        log.info("mesos-dns http: listening on %s:%d (enumeration %s)", listen_host, listen_port,
                 "on" if self.config.enumeration_on else "off")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._walker is not None:
            self._walker.shutdown(wait=False, cancel_futures=True)
            self._walker = None

    async def __aenter__(self) -> "MesosDnsHttpServer":
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.stop()

    async def _version_handler(self, request: web.Request) -> web.Response:
        return _json(orjson.dumps(version_view(self._version)))

    async def _config_handler(self, request: web.Request) -> web.Response:
        return _json(orjson.dumps(config_view(self.config, self._serial())))

    async def _hosts_handler(self, request: web.Request) -> web.Response:
        return _json(orjson.dumps(hosts_view(self._records(), request.match_info["host"])))

    async def _services_handler(self, request: web.Request) -> web.Response:
        return _json(orjson.dumps(services_view(self._records(), request.match_info["service"])))

    async def _enumerate_handler(self, request: web.Request) -> web.Response:
        table, names, domain = dict(self._records()), self._task_names, self.config.domain
        return _json(await self._walk(lambda: orjson.dumps(enumerate_view(table, domain, names))))

    async def _axfr_handler(self, request: web.Request) -> web.Response:
        table, config, serial = dict(self._records()), self.config, self._serial()
        return _json(await self._walk(lambda: orjson.dumps(axfr_view(table, config, serial))))

    async def _walk(self, render: Callable[[], bytes]) -> bytes:
        return await asyncio.get_running_loop().run_in_executor(self._walker, render)


async def _ports_handler(request: web.Request) -> web.Response:
    return web.Response(status=501, text="To be implemented...")


def _json(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json")


@web.middleware
async def _mesos_dns_errors(request: web.Request, handler) -> web.StreamResponse:
    """404 and 405 with Mesos-DNS's bodies (aiohttp's own say "Not Found"); 405 keeps Allow."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        body = _BODIES.get(error.status)
        if body is None:
            raise
        headers = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
        return web.Response(status=error.status, text=body, headers=headers)
