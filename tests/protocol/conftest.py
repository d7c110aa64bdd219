"""Real clients (dnspython, dig) against the real DnsServer on loopback, ephemeral ports.

`dns_server` runs one server per test on 127.0.0.1:0 with a small cluster zone, ready. Tests
that need the not-ready state flip `zones.ready` themselves.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass

import pytest

from appliers.dns.answer import Answerer
from appliers.dns.records import record
from appliers.dns.server import DnsServer
from appliers.dns.zone import ZoneSet

BIG = "big.marathon.mesos."  # 60 A records: about 1,000 bytes, over 512, under 1232
BIG_ADDRESSES = [f"10.0.1.{i}" for i in range(1, 61)]
RECORDS = [
    record("web.marathon.mesos.", "A", 5, "10.0.0.1"),
    record("web.marathon.mesos.", "A", 5, "10.0.0.2"),
    record("_web._tcp.marathon.mesos.", "SRV", 5, "0 1 31000 web.marathon.mesos."),
    *(record(BIG, "A", 5, address) for address in BIG_ADDRESSES),
]


@dataclass
class Running:
    zones: ZoneSet
    server: DnsServer

    @property
    def host(self) -> str:
        return self.server.address[0]

    @property
    def port(self) -> int:
        return self.server.address[1]


async def serve(host: str = "127.0.0.1", *, ready: bool = True, **options) -> Running:
    zones = ZoneSet()
    zones.replace(RECORDS)
    zones.ready = ready
    server = DnsServer(Answerer(zones, options.pop("forward", None)), host, 0, **options)
    await server.start()
    return Running(zones, server)


@pytest.fixture
async def dns_server():
    running = await serve()
    try:
        yield running
    finally:
        await running.server.stop()


@pytest.fixture
def dig_path() -> str:
    path = shutil.which("dig")
    if path is None:
        pytest.skip("dig is not installed (Debian package bind9-dnsutils)")
    return path


async def dig(path: str, running: Running, *args: str) -> str:
    """dig's text output; one try, 2 s per try, bounded as a whole. Run as a subprocess on
    the test's loop, since the server answers on that same loop."""
    process = await asyncio.create_subprocess_exec(
        path, f"@{running.host}", "-p", str(running.port), "+time=2", "+tries=1", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(process.communicate(), 15)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return out.decode()
