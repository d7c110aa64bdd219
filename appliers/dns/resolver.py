"""The forwarder: the Answerer's forward hook, and the only I/O of forwarding.

`Forwarder(routes, ...)` is awaited with a `Forwarding` (a query for a name outside our zones,
from a client the recursion ACL allows) and returns the reply bytes for that client:
1. from the cache (cache.py) when a live entry exists;
2. else from the upstreams of the name's route (routing.py), chosen by their scores
   (upstreams.py): at most two asked in parallel over the client's transport, the first
   valid reply of any rcode wins (dcos-dns), each attempt bounded by `attempt_timeout`.
   When every chosen upstream fails early (refused, reset) and time is left, the next best
   untried upstream is asked, all within `total_timeout`;
3. SERVFAIL when nobody answered in time; REFUSED when the route has no upstreams at all
   (nobody to ask is a policy, not a failure worth retrying).

Every upstream query is its own: a fresh UDP socket connected to the upstream (an ephemeral,
random source port; the kernel drops datagrams from any other address), a fresh id from
`secrets`, RD set, CD and DO copied, our own EDNS size, and the client's question copied.
A reply counts only when it comes from the address and port we asked, with our id, QR set and
the same question (name case-insensitively, type, class); anything else is dropped, counted
in `counters.mismatched`, and the wait goes on. Header-only error replies (FORMERR, SERVFAIL,
NOTIMP, REFUSED without a question) are accepted as long as the rest matches.

Identical questions in flight at the same time (same cache key, same transport) share one
dispatch: a burst of clients asking a name whose entry just expired costs one upstream query.

Losers are not cancelled when a winner arrives: they run on (at most `max_stragglers` of
them, each still bounded by its timeout) so the scores learn that an upstream is dead or
slow even while its partner keeps clients fast. `close()` cancels them.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

from appliers.dns.answer import Forwarding
from appliers.dns.cache import CacheKey, Client, ReplyCache, StoredReply
from appliers.dns.routing import Routes, Upstream
from appliers.dns.upstreams import UpstreamHealth
from appliers.dns.wire import (HEADER, WireError, counts, message_id, opt_record, query_opt, question_key,
                               rcode)

FORMERR, SERVFAIL, NOTIMP, REFUSED = 1, 2, 4, 5
_ERROR_RCODES = frozenset({FORMERR, SERVFAIL, NOTIMP, REFUSED})
_MAX_TCP_REPLIES = 8  # replies read on one upstream TCP connection before giving up on it


@dataclass
class ForwarderCounters:
    forwarded: int = 0  # queries handed to the forwarder
    cache_hits: int = 0
    upstream_queries: int = 0
    upstream_failures: int = 0  # timeouts, refused or reset connections, malformed replies
    coalesced: int = 0  # queries that joined an identical one already on its way upstream
    mismatched: int = 0  # replies dropped: wrong source, id, flags or question
    servfail: int = 0  # nobody answered in time
    no_route: int = 0  # no upstream configured for the name: REFUSED
    stragglers_cancelled: int = 0  # losers cut short because too many were running
    # Upstream queries by (upstream, outcome): "answered", "error" (it said SERVFAIL or
    # REFUSED), "failed" (timeout, refused or reset connection, malformed reply).
    by_upstream: dict[tuple[str, str], int] = field(default_factory=dict)

    def outcome(self, upstream: Upstream, outcome: str) -> None:
        key = (str(upstream), outcome)
        self.by_upstream[key] = self.by_upstream.get(key, 0) + 1

    def snapshot(self) -> dict[str, int]:
        return asdict(self)


class Forwarder:
    def __init__(self, routes: Routes, *, health: UpstreamHealth | None = None,
                 cache: ReplyCache | None = None, attempt_timeout: float = 2.0,
                 total_timeout: float = 3.0, upstream_udp_payload: int = 1232,
                 udp_payload: int = 4096, max_stragglers: int = 256) -> None:
        """`upstream_udp_payload`: the EDNS size we advertise upstream (1232, the DNS flag
        day value: no IP fragmentation). `udp_payload`: the size our replies advertise to
        clients; pass the Answerer's `max_udp_payload`."""
        self.routes = routes
        self.health = health if health is not None else UpstreamHealth()
        self.cache = cache if cache is not None else ReplyCache()
        self.attempt_timeout = attempt_timeout
        self.total_timeout = max(total_timeout, attempt_timeout)
        self.upstream_udp_payload = upstream_udp_payload
        self.udp_payload = udp_payload
        self.max_stragglers = max_stragglers
        self.counters = ForwarderCounters()
        self._stragglers: set[asyncio.Task] = set()
        self._inflight: dict[tuple[CacheKey, bool], asyncio.Task] = {}

    @classmethod
    def from_config(cls, upstreams: Iterable[str] = (),
                    forward_zones: Mapping[str, Iterable[str]] | None = None,
                    mesos_upstreams: Iterable[str] = (), **options) -> Forwarder:
        """From plain values: upstreams as "IP[:PORT]" strings (port 53 by default), forward
        zones as {zone: ["IP[:PORT]", ...]}, the masters' Mesos-DNS as "IP[:PORT]" (DC/OS
        runs it on port 61053: give the port). Raises ValueError on a bad value."""
        return cls(Routes(upstreams, forward_zones, mesos_upstreams), **options)

    async def close(self) -> None:
        """Cancel the dispatches and losers still running; call when the DNS server stops."""
        tasks = set(self._stragglers) | set(self._inflight.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)

    async def __call__(self, forwarding: Forwarding) -> bytes | None:
        self.counters.forwarded += 1
        query = forwarding.query
        try:
            name, qtype, qclass, question_end = question_key(query)
            edns, do = query_opt(query)
        except WireError:  # the answerer parsed it with dnslib; a disagreement is FORMERR
            return _error_reply(query, HEADER, FORMERR, None)
        client = Client(query, question_end, edns, do, forwarding.limit, self.udp_payload)
        key = (name, qtype, qclass, do)
        stored = self.cache.lookup(key)
        if stored is not None:
            self.counters.cache_hits += 1
            return stored.render(client, self.cache.clock())
        route = self.routes.route(str(forwarding.request.q.qname).lower())
        if not route.upstreams:
            self.counters.no_route += 1
            return _error_reply(query, question_end, REFUSED, client)
        stored = await self._shared_dispatch(key, route.upstreams, client, forwarding.tcp)
        if stored is None:
            self.counters.servfail += 1
            return _error_reply(query, question_end, SERVFAIL, client)
        self.cache.keep(key, stored)
        return stored.render(client, self.cache.clock())

    # -- dispatch ------------------------------------------------------------------------

    async def _shared_dispatch(self, key: CacheKey, upstreams: tuple[Upstream, ...], client: Client,
                               tcp: bool) -> StoredReply | None:
        """The dispatch for `key`, joined when one is already running. Shielded: a client
        that goes away (its task cancelled) does not cancel the others' answer."""
        inflight = (key, tcp)
        task = self._inflight.get(inflight)
        if task is None:
            task = asyncio.ensure_future(self._dispatch(upstreams, client, key[:3], tcp))
            self._inflight[inflight] = task
            task.add_done_callback(lambda _: self._inflight.pop(inflight, None))
        else:
            self.counters.coalesced += 1
        return await asyncio.shield(task)

    async def _dispatch(self, upstreams: tuple[Upstream, ...], client: Client,
                        question: tuple[bytes, int, int], tcp: bool) -> StoredReply | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.total_timeout
        chosen = self.health.choose(upstreams)
        spare = [u for u in self.health.rank(upstreams) if u not in chosen]  # fallback order
        pending = {self._launch(u, client, question, tcp, deadline) for u in chosen}
        winner = None
        try:
            while pending and winner is None:  # bounded: each round ends a task or the time
                left = deadline - loop.time()
                if left <= 0:
                    break
                done, pending = await asyncio.wait(pending, timeout=left, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if winner is None and task.result() is not None:
                        winner = task.result()
                if winner is None and not pending and spare and deadline - loop.time() > 0:
                    pending = {self._launch(spare.pop(0), client, question, tcp, deadline)}
        except BaseException:  # cancelled (the server stops) or a bug: nothing may outlive us
            for task in pending:
                task.cancel()
            raise
        self._let_run(pending)
        return winner

    def _launch(self, upstream: Upstream, client: Client, question, tcp: bool,
                deadline: float) -> asyncio.Task:
        timeout = min(self.attempt_timeout, deadline - asyncio.get_running_loop().time())
        return asyncio.ensure_future(self._attempt(upstream, client, question, tcp, timeout))

    def _let_run(self, tasks: set[asyncio.Task]) -> None:
        """Losers run to their own timeout so their outcome reaches the scores."""
        for task in tasks:
            if len(self._stragglers) >= self.max_stragglers:
                task.cancel()
                self.counters.stragglers_cancelled += 1
                continue
            self._stragglers.add(task)
            task.add_done_callback(self._stragglers.discard)

    async def _attempt(self, upstream: Upstream, client: Client, question, tcp: bool,
                       timeout: float) -> StoredReply | None:
        """One upstream query; its outcome goes into the scores. None when it failed."""
        loop = asyncio.get_running_loop()
        query_id = secrets.randbits(16)
        message = _upstream_query(client, query_id, self.upstream_udp_payload)
        self.counters.upstream_queries += 1
        started = loop.time()
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                ask = self._ask_tcp if tcp else self._ask_udp
                reply = await ask(upstream, message, query_id, question)
            stored = self.cache.prepare(reply)
        except (TimeoutError, OSError, WireError, asyncio.IncompleteReadError):
            self.counters.upstream_failures += 1
            self.counters.outcome(upstream, "failed")
            self.health.record_failure(upstream)
            return None
        if stored.rcode in (SERVFAIL, REFUSED):  # an answer for the client, no use to us
            self.counters.outcome(upstream, "error")
            self.health.record_failure(upstream)
        else:
            self.counters.outcome(upstream, "answered")
            self.health.record_success(upstream, loop.time() - started)
        return stored

    async def _ask_udp(self, upstream: Upstream, message: bytes, query_id: int, question) -> bytes:
        loop = asyncio.get_running_loop()
        transport, exchange = await loop.create_datagram_endpoint(
            lambda: _UdpExchange(self, upstream, query_id, question),
            remote_addr=(upstream.host, upstream.port))
        try:
            transport.sendto(message)
            return await exchange.reply
        finally:
            transport.close()

    async def _ask_tcp(self, upstream: Upstream, message: bytes, query_id: int, question) -> bytes:
        reader, writer = await asyncio.open_connection(upstream.host, upstream.port)
        try:
            writer.write(len(message).to_bytes(2, "big") + message)
            await writer.drain()
            for _ in range(_MAX_TCP_REPLIES):
                size = int.from_bytes(await reader.readexactly(2), "big")
                reply = await reader.readexactly(size)
                if answers(reply, query_id, question):
                    return reply
                self.counters.mismatched += 1
            raise WireError("no matching reply on the connection")
        finally:
            writer.close()


class _UdpExchange(asyncio.DatagramProtocol):
    """One query's socket: resolves `reply` with the first datagram that answers it."""

    def __init__(self, forwarder: Forwarder, upstream: Upstream, query_id: int, question) -> None:
        self.forwarder, self.upstream, self.query_id, self.question = forwarder, upstream, query_id, question
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr) -> None:
        if self.reply.done():
            return
        upstream = self.upstream
        if (addr[0], addr[1]) == (upstream.host, upstream.port) and answers(data, self.query_id, self.question):
            self.reply.set_result(data)
        else:
            self.forwarder.counters.mismatched += 1

    def error_received(self, exc: Exception) -> None:
        if not self.reply.done():  # ICMP port unreachable and friends: this upstream is down
            self.reply.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.reply.done():
            self.reply.set_exception(exc or ConnectionError("socket closed"))


def answers(reply: bytes, query_id: int, question: tuple[bytes, int, int]) -> bool:
    """Whether `reply` is a response to our query `query_id` about `question` (name in wire
    form lower case, type, class). Pure: the spoof check."""
    if len(reply) < HEADER or message_id(reply) != query_id or not reply[2] & 0x80 or reply[2] & 0x78:
        return False  # short, another id, not a response, or not a QUERY
    qdcount = counts(reply)[0]
    if qdcount == 0:
        return rcode(reply) in _ERROR_RCODES
    if qdcount != 1:
        return False
    try:
        return question_key(reply)[:3] == question
    except WireError:
        return False


def _upstream_query(client: Client, query_id: int, udp_payload: int) -> bytes:
    """Our query for the client's question: new id, RD, CD copied, one question, our OPT."""
    query = client.query
    header = (query_id.to_bytes(2, "big") + bytes((0x01, query[3] & 0x10))
              + b"\x00\x01\x00\x00\x00\x00\x00\x01")
    return header + query[HEADER:client.question_end] + opt_record(udp_payload, client.do)


def _error_reply(query: bytes, question_end: int, code: int, client: Client | None) -> bytes:
    """id, opcode and RD copied, QR and RA set, the question kept (dnspython insists), and an
    OPT when the client sent one."""
    opt = opt_record(client.udp_payload, client.do) if client is not None and client.edns else b""
    qdcount = 1 if question_end > HEADER else 0
    header = (query[:2] + bytes((0x80 | (query[2] & 0x79), 0x80 | code))
              + qdcount.to_bytes(2, "big") + bytes(4) + (1 if opt else 0).to_bytes(2, "big"))
    return header + query[HEADER:question_end] + opt
