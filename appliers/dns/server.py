"""The node's DNS listeners: UDP and TCP on one host:port, answering through an `Answerer`.
The only I/O of appliers/dns.

UDP answers on the event loop's readiness callback for the socket, with no task, no await and
no transport per packet: each wakeup drains up to `_DATAGRAMS_PER_WAKEUP` datagrams with plain
`recvfrom`/`sendto` on the non-blocking socket (about 15 % less CPU a query than a
DatagramProtocol on uvloop, in an alternating A/B on one pinned core), and the answerer is synchronous, so each
reply goes out before the next datagram is read. A reply the socket cannot take at once (send
buffer full) is dropped, as UDP may; the client asks again. TCP (appliers/dns/tcp.py)
takes RFC 7766's framing, answers pipelined queries in order, and keeps one client from taking
TCP from the others: at most `tcp_connections_per_client` connections per source address and
`max_tcp_connections` in all, where a newcomer over either limit takes the slot of the
longest-idle connection of the heaviest client; `tcp_idle_timeout` to start the next query,
`tcp_message_timeout` to finish reading it (slow-loris) and to write its reply.
Every query goes to the answerer with the client's address, which decides whether that
client may recurse (the recursion ACL). Queries the answerer hands back as `Forwarding` run
as tasks through its forward hook, at most `max_forwarding` at once (dcos-dns caps in-flight
requests at 1024); beyond that the client gets SERVFAIL at once rather than a queue.

UDP queries try `FastPath` first (pre-encoded answers for the common query, no DNS library;
appliers/dns/fastpath.py), then the answerer. Run the loop on uvloop for the best rate
(bench/dns_throughput.py).

Nothing is logged per query. `counters` is read by the node's metrics; the rcode and TC bit
are read from the reply header, so the answerer needs no counting hooks.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import asdict, dataclass, field

from appliers.dns.answer import SERVFAIL, Answerer, Forwarding, header_only
from appliers.dns.fastpath import FastPath
from appliers.dns.tcp import TcpConnections

log = logging.getLogger(__name__)

_NXDOMAIN = 3
_BIND_ATTEMPTS = 20  # port 0: the UDP port the kernel picks may be taken for TCP; try again
_DATAGRAMS_PER_WAKEUP = 64  # then the loop runs its other callbacks (TCP, the reconcile loop)
_MAX_QUERY = 4096  # bytes read per datagram: far above any query (a longer one reads as malformed)


@dataclass
class Counters:
    queries: int = 0  # datagrams and TCP messages received
    answered: int = 0  # replies sent, any rcode
    nxdomain: int = 0
    servfail: int = 0
    refused: int = 0
    truncated: int = 0  # replies sent with TC=1 (UDP; TCP only past 64 KiB)
    dropped: int = 0  # no reply: not a query, or the TCP peer went away
    forwarded: int = 0
    tcp_connections: int = 0  # accepted and served
    tcp_refused: int = 0  # closed at once: over a limit, and every other connection busy
    tcp_evicted: int = 0  # idle connections closed to make room for a new one
    tcp_timeouts: int = 0  # closed for idling, or for taking too long over one message
    # Replies sent by rcode (the index), per transport: one list increment a reply, read at
    # scrape time (appliers/dns/worker_metrics.py), far cheaper than a prometheus Counter.
    udp_rcodes: list[int] = field(default_factory=lambda: [0] * 16)
    tcp_rcodes: list[int] = field(default_factory=lambda: [0] * 16)

    def snapshot(self) -> dict[str, int]:
        return asdict(self)

    def count_reply(self, reply: bytes, tcp: bool = False) -> None:
        self.answered += 1
        rcode = reply[3] & 0x0F
        (self.tcp_rcodes if tcp else self.udp_rcodes)[rcode] += 1
        if rcode == _NXDOMAIN:
            self.nxdomain += 1
        elif rcode == SERVFAIL:
            self.servfail += 1
        elif rcode == 5:
            self.refused += 1
        if reply[2] & 0x02:
            self.truncated += 1


class DnsServer:
    # TCP defaults of the same order as Go DNS servers (miekg/dns, CoreDNS: 8-10 s idle, a
    # few seconds to read or write one message). 1024 connections in all is well above what
    # one node's containers hold (BIND serves 150 TCP clients by default) and still bounds the
    # sockets and memory; 32 per client leaves room for a resolver library's pool.
    def __init__(self, answerer: Answerer, host: str = "127.0.0.1", port: int = 53, *,
                 tcp_idle_timeout: float = 10.0, tcp_message_timeout: float = 3.0,
                 max_tcp_connections: int = 1024, tcp_connections_per_client: int = 32,
                 max_forwarding: int = 1024, reuse_port: bool = False) -> None:
        self.answerer = answerer
        # SO_REUSEPORT on both sockets: several processes serve one port, and the kernel
        # spreads clients over them (appliers/dns/workers.py). Needs a fixed port.
        self.reuse_port = reuse_port
        self.fastpath = FastPath(answerer)  # UDP: pre-encoded answers first, then the answerer
        self.host, self.port = host, port
        self.max_tcp_connections = max_tcp_connections
        self.max_forwarding = max_forwarding
        self.counters = Counters()
        self.tcp = TcpConnections(
            self._tcp_reply, self.counters, per_client=tcp_connections_per_client,
            total=max_tcp_connections, idle_timeout=tcp_idle_timeout,
            message_timeout=tcp_message_timeout)
        self.address: tuple[str, int] | None = None  # (host, port) actually bound, once started
        self._udp: socket.socket | None = None
        self._tcp: asyncio.Server | None = None
        self._forwarding: set[asyncio.Task] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        for attempt in range(_BIND_ATTEMPTS):
            udp = _udp_socket(family, self.host, self.port, self.reuse_port)
            port = udp.getsockname()[1]
            try:
                self._tcp = await asyncio.start_server(
                    self.tcp.serve, self.host, port, family=family, reuse_address=True,
                    reuse_port=self.reuse_port or None, backlog=self.max_tcp_connections)
            except OSError:
                udp.close()
                if self.port or attempt == _BIND_ATTEMPTS - 1:
                    raise
                continue
            self._udp = udp
            loop.add_reader(udp.fileno(), self._readable)
            self.address = (self.host, port)
            log.info("DNS listening on %s port %d (udp, tcp)", self.host, port)
            return

    async def stop(self) -> None:
        if self._udp is not None:
            asyncio.get_running_loop().remove_reader(self._udp.fileno())
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()  # stop accepting first; open connections are cancelled below
        tasks = self.tcp.tasks | self._forwarding
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        if self._tcp is not None:
            await self._tcp.wait_closed()  # from 3.12 this waits for connections: hence last
            self._tcp = None

    # -- UDP -----------------------------------------------------------------------------

    def _readable(self) -> None:
        """The UDP socket has datagrams: answer up to `_DATAGRAMS_PER_WAKEUP` of them."""
        sock = self._udp
        if sock is None:
            return
        receive = sock.recvfrom
        for _ in range(_DATAGRAMS_PER_WAKEUP):
            try:
                data, addr = receive(_MAX_QUERY)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # an ICMP error for a client that left: nobody to tell
            self._on_datagram(data, addr, sock)

    def _on_datagram(self, data: bytes, addr, sock: socket.socket) -> None:
        counters = self.counters
        counters.queries += 1
        client = addr[0]  # the client decides RA and recursion
        reply = self.fastpath.reply(data, client)
        if reply is None:
            reply = self.answerer.answer(data, client=client)
        if reply is None:
            counters.dropped += 1
        elif isinstance(reply, Forwarding):
            self._start_forwarding(reply, lambda out: self._send(out, addr))
        else:
            try:
                sock.sendto(reply, addr)
            except OSError:  # the send buffer is full, or the client is unreachable: UDP may drop
                counters.dropped += 1
                return
            counters.count_reply(reply)

    def _send(self, reply: bytes, addr) -> bool:
        """A UDP reply out later (forwarded); False when it could not go."""
        sock = self._udp
        if sock is None:
            return False
        try:
            sock.sendto(reply, addr)
        except OSError:
            return False
        return True

    # -- TCP -----------------------------------------------------------------------------

    async def _tcp_reply(self, query: bytes, client: str) -> bytes | None:
        reply = self.answerer.answer(query, tcp=True, client=client)
        if isinstance(reply, Forwarding):
            reply = await self._forwarded(reply)
        return reply

    # -- forwarding ----------------------------------------------------------------------

    def _start_forwarding(self, forwarding: Forwarding, send) -> None:
        if len(self._forwarding) >= self.max_forwarding:
            reply = header_only(forwarding.query, SERVFAIL)
            if send(reply) is not False:
                self.counters.count_reply(reply)
            return

        async def run() -> None:
            reply = await self._forwarded(forwarding)
            if reply is not None:
                if send(reply) is not False:
                    self.counters.count_reply(reply)

        task = asyncio.get_running_loop().create_task(run())
        self._forwarding.add(task)
        task.add_done_callback(self._forwarding.discard)

    async def _forwarded(self, forwarding: Forwarding) -> bytes | None:
        """The upstream reply through the answerer's hook; SERVFAIL when the hook fails (the
        hook owns its timeouts)."""
        self.counters.forwarded += 1
        try:
            return await self.answerer.forward(forwarding)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("forwarding failed")  # a hook bug, not per-query noise
            return header_only(forwarding.query, SERVFAIL)


def _udp_socket(family: int, host: str, port: int, reuse_port: bool) -> socket.socket:
    """A bound, non-blocking UDP socket (SO_REUSEPORT first when asked)."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
