"""Stand-in upstream resolvers on loopback for the forwarding tests: real dnsmasq and unbound
processes, and small asyncio servers that misbehave on purpose (a black hole, a spoofer, a
slow one). Each is an async context manager that stops what it started, whatever happened.

Every dnsmasq is authoritative (`--auth-zone`) so its negative answers carry an SOA, the way
real resolvers answer, and each one answers its own address for the same names, so a test
can tell who answered. The fixed ports sit below the kernel's ephemeral range (32768-60999),
so no client socket can be holding one.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil

import dns.asyncquery
import dns.exception
import dns.message
import dns.name
import dns.rrset

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"
# Ports (127.0.0.1): dnsmasq upstreams, black holes, a fake upstream and its racing twin,
# and ports where nothing listens.
MESOS_DNS, ZONE_DNS, DEFAULT_DNS = 31001, 31002, 31003
UNBOUND_DNS = 31040
BLACK_HOLE, BLACK_HOLE_2 = 31010, 31011
FAKE, RACER = 31020, 31021
CLOSED, CLOSED_2 = 31030, 31031
ZONES = ("mesos", "corp.test", "example.test")
PROBES = ("probe.mesos", "probe.corp.test", "probe.example.test")
ADDRESS = {MESOS_DNS: "10.0.0.1", ZONE_DNS: "10.0.0.2", DEFAULT_DNS: "10.0.0.3"}
BIG = [f"10.1.0.{i}" for i in range(1, 61)]  # about 1,000 bytes of answers


@contextlib.asynccontextmanager
async def dnsmasq(port: int, *, authoritative: bool = True, host: str = "127.0.0.1"):
    """dnsmasq on 127.0.0.1:port; the probes answer ADDRESS[port], TTL 30. Authoritative for
    ZONES (negative answers with an SOA); otherwise a plain local resolver whose
    big.bulk.test answers BIG (auth mode refuses names outside its zones)."""
    args = [DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
            f"--port={port}", f"--listen-address={host}", "--bind-interfaces", "--pid-file=",
            "--log-facility=-", "--local-ttl=30", "--auth-ttl=30",
            f"--host-record={','.join(PROBES)},{ADDRESS.get(port, '10.0.0.9')}"]
    if authoritative:
        args += [f"--auth-server=ns.wayfinder.test,{host}", *(f"--auth-zone={zone}" for zone in ZONES)]
    else:
        args += [f"--address=/big.bulk.test/{address}" for address in BIG]
    async with _running(args, host, port, "probe.example.test.") as process:
        yield process


UNBOUND_CONF = """server:
  interface: 127.0.0.1
  port: {port}
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "{directory}"
  pidfile: ""
  use-syslog: no
  num-threads: 1
  do-ip6: no
  access-control: 127.0.0.0/8 allow
  local-zone: "unbound.test." static
  local-data: "unbound.test. 30 IN SOA ns.unbound.test. hostmaster.unbound.test. 1 3600 600 86400 20"
  local-data: "probe.unbound.test. 30 IN A 10.0.0.4"
  local-zone: "." refuse
remote-control:
  control-enable: no
"""


@contextlib.asynccontextmanager
async def unbound(port: int, directory):
    """unbound on 127.0.0.1:port with the static zone unbound.test (never recursing)."""
    conf = directory / "unbound.conf"
    conf.write_text(UNBOUND_CONF.format(port=port, directory=directory))
    async with _running([UNBOUND, "-d", "-c", str(conf)], "127.0.0.1", port, "probe.unbound.test.") as process:
        yield process


@contextlib.asynccontextmanager
async def _running(args: list[str], host: str, port: int, probe: str):
    """A DNS server process, once it answers `probe`; terminated (killed if need be) after."""
    process = await asyncio.create_subprocess_exec(
        *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        await _until_answering(process, host, port, probe)
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _until_answering(process, host: str, port: int, probe: str) -> None:
    query = dns.message.make_query(probe, "A")
    for _ in range(50):  # 50 x 0.1 s at most
        if process.returncode is not None:
            raise RuntimeError(f"the DNS server on port {port} exited: {(await process.stderr.read()).decode()}")
        try:
            await dns.asyncquery.udp(query, host, port=port, timeout=0.1)
            return
        except (dns.exception.Timeout, OSError):
            await asyncio.sleep(0.05)
    raise RuntimeError(f"nothing answers on port {port}")


class _Sink(asyncio.DatagramProtocol):
    """A black hole: takes every datagram, answers none, counts them."""

    def __init__(self) -> None:
        self.received = 0

    def datagram_received(self, data, addr) -> None:
        self.received += 1


@contextlib.asynccontextmanager
async def black_hole(port: int):
    transport, sink = await asyncio.get_running_loop().create_datagram_endpoint(
        _Sink, local_addr=("127.0.0.1", port))
    try:
        yield sink
    finally:
        transport.close()


class _Spoofer(asyncio.DatagramProtocol):
    """A fake upstream that answers every query four times, in this order: with the wrong id,
    about the wrong name, from another port (the racer, with a poisoned address), and
    finally correctly with 192.0.2.53."""

    def __init__(self, racer: asyncio.DatagramTransport) -> None:
        self.racer = racer
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data, addr) -> None:
        query = dns.message.from_wire(data)

        def reply(address: str, name=None, id=None) -> bytes:
            message = dns.message.make_response(query)
            if name is not None:
                message.question = [dns.rrset.RRset(dns.name.from_text(name), 1, 1)]
            message.id = query.id if id is None else id
            message.answer.append(dns.rrset.from_text(message.question[0].name, 60, "IN", "A", address))
            return message.to_wire()

        self.transport.sendto(reply("192.0.2.66", id=(query.id + 1) % 65536), addr)
        self.transport.sendto(reply("192.0.2.66", name="other.example.test."), addr)
        self.racer.sendto(reply("192.0.2.66"), addr)
        self.transport.sendto(reply("192.0.2.53"), addr)


@contextlib.asynccontextmanager
async def spoofing_upstream():
    loop = asyncio.get_running_loop()
    racer, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", RACER))
    transport, _ = await loop.create_datagram_endpoint(lambda: _Spoofer(racer), local_addr=("127.0.0.1", FAKE))
    try:
        yield
    finally:
        transport.close()
        racer.close()


class _SlowUpstream(asyncio.DatagramProtocol):
    """Answers every query with 192.0.2.80 after 50 ms, counting the queries."""

    def __init__(self) -> None:
        self.queries = 0
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data, addr) -> None:
        self.queries += 1
        reply = dns.message.make_response(dns.message.from_wire(data))
        reply.answer.append(dns.rrset.from_text(reply.question[0].name, 60, "IN", "A", "192.0.2.80"))
        asyncio.get_running_loop().call_later(0.05, self.transport.sendto, reply.to_wire(), addr)


@contextlib.asynccontextmanager
async def slow_upstream():
    transport, upstream = await asyncio.get_running_loop().create_datagram_endpoint(
        _SlowUpstream, local_addr=("127.0.0.1", FAKE))
    try:
        yield upstream
    finally:
        transport.close()
