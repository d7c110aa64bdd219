"""The L7 half of the demo: a node running HAProxy for the `external` group, an app with a
vhost on two real HTTP backends on this machine, and a client asking for the vhost through
HAProxy every two seconds, printing which backend answered.

Needs HAProxy (Debian package haproxy) and openssl; no root: everything is on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
from pathlib import Path

import aiohttp
from aiohttp import web

from appliers.haproxy.process import HAPROXY
from appliers.haproxy.settings import HaproxySettings, SharedPorts
from appliers.node import Node, NodeOptions
from cli.demo.lines import say
from cli.running import at_forced_exit
from runtime.ports import free_ports
from runtime.blocking import sleep_or_stop
from schemas.catalog import Catalog

VHOST = "www.shop.test"
APP_ID = "/shop/www"


def why_not() -> str | None:
    if not os.path.exists(HAPROXY):
        return f"it needs {HAPROXY} (Debian package haproxy)"
    if shutil.which("openssl") is None:
        return "it needs openssl for the HTTPS frontend's certificate"
    return None


async def _backend(name: str, port: int) -> web.AppRunner:
    """An HTTP server on 127.0.0.1:port answering its name: one task of the app."""
    async def answer(request: web.Request) -> web.Response:
        return web.Response(text=f"{name}\n")
    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def _kill_haproxy(directory: str) -> None:
    """For a forced exit (cli/running.py): HAProxy runs in its own session and only a clean
    exit stops it (appliers/haproxy/process.py, atexit), so SIGKILL its process group, found by
    the pid file in the demo's own directory."""
    try:
        pid = int(Path(directory, "haproxy.pid").read_text().split()[0])
        if directory.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():  # not a reused pid
            os.killpg(os.getpgid(pid), signal.SIGKILL)  # the master leads its group
    except (OSError, ValueError, IndexError):
        pass
    shutil.rmtree(directory, ignore_errors=True)


class EdgeDemo:
    def __init__(self, bootstrap: str, catalog: Catalog):
        self.directory = tempfile.mkdtemp(prefix="wayfinder-demo-haproxy-")
        http, https, appid, stats, *self.task_ports = free_ports(6)
        self.http = http
        self.settings = HaproxySettings(groups=("external",), ports=SharedPorts(http, https, appid, stats),
                                        bind="127.0.0.1", directory=self.directory, hard_stop_after="5s")
        self.node = Node(NodeOptions(bootstrap=bootstrap, catalog=catalog, node_id="demo-edge", agent_ip="127.0.0.1",
                                     roles=("haproxy",), haproxy=self.settings))

    async def run(self, stop: asyncio.Event, control) -> None:
        at_forced_exit(lambda: _kill_haproxy(self.directory))
        backends = [await _backend(f"www-{n}", port) for n, port in enumerate(self.task_ports[:2], start=1)]
        try:
            node = asyncio.create_task(self.node.run(stop))
            await control("POST", "/sim/agents", {"hostname": "127.0.0.1", "id": "demo-edge-agent",
                                                  "port_ranges": [[p, p] for p in self.task_ports[:2]]})
            (service_port,) = free_ports(1)
            await control("POST", "/sim/apps", {
                "id": APP_ID, "instances": 2, "portDefinitions": [{"port": service_port}],
                "constraints": [["hostname", "CLUSTER", "127.0.0.1"]],
                "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": VHOST}})
            say(f"HAProxy for group external on 127.0.0.1:{self.http}; a client asks for http://{VHOST}/ "
                f"(curl -H 'Host: {VHOST}' 127.0.0.1:{self.http})", err=True)
            await self._client(stop)
            await node
        finally:
            for runner in backends:
                await runner.cleanup()
            shutil.rmtree(self.directory, ignore_errors=True)

    async def _client(self, stop: asyncio.Event) -> None:
        """Every two seconds: GET the vhost through HAProxy, print who answered."""
        url = f"http://127.0.0.1:{self.http}/"
        timeout = aiohttp.ClientTimeout(total=2.0)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while not stop.is_set():
                try:
                    async with http.get(url, headers={"Host": VHOST}) as reply:
                        body = (await reply.text()).strip()
                        said = f"answered by {body}" if reply.status == 200 else f"HTTP {reply.status} (not routed yet)"
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
                    said = f"no answer yet ({type(error).__name__})"
                say(f"edge       http://{VHOST}/ -> {said}")
                await sleep_or_stop(stop, 2.0)

