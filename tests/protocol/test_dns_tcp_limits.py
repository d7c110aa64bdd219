"""DNS over TCP under abuse, with real sockets on loopback against the real DnsServer: a client
hoarding connections, many clients filling the server, idle connections, a slow-loris, a
client that never reads, and pipelining. Other clients must keep getting answers over TCP
within a second, and UDP throughout.

Several clients are told apart by their source address: 127.0.0.2, 127.0.0.3, ... are all
loopback on Linux and bindable without setup.
"""

from __future__ import annotations

import asyncio
import socket

import dns.asyncquery
import dns.message
import dns.rcode
import pytest

from .conftest import BIG, BIG_ADDRESSES, serve

TIMEOUT = 2.0  # any single wait in these tests
PROMPT = 1.0  # how fast another client's TCP query must be answered while the server is abused
WEB = "web.marathon.mesos."
WEB_ADDRESSES = ["10.0.0.1", "10.0.0.2"]


def addresses(reply: dns.message.Message) -> list[str]:
    return sorted(rd.address for rrset in reply.answer for rd in rrset)


def framed(*queries: dns.message.Message) -> bytes:
    return b"".join(len(wire).to_bytes(2, "big") + wire for wire in (q.to_wire() for q in queries))


async def read_reply(reader: asyncio.StreamReader) -> dns.message.Message:
    size = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), TIMEOUT), "big")
    return dns.message.from_wire(await asyncio.wait_for(reader.readexactly(size), TIMEOUT))


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    """True when the server closed (or reset) the connection within `within` seconds without
    sending anything more."""
    try:
        return await asyncio.wait_for(reader.read(1), within) == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


class Sockets:
    """Every client connection a test opens, closed at teardown whatever happened."""

    def __init__(self, running) -> None:
        self.running = running
        self.writers: list[asyncio.StreamWriter] = []

    async def open(self, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            self.running.host, self.running.port, local_addr=(source, 0)), TIMEOUT)
        self.writers.append(writer)
        return reader, writer

    def close(self) -> None:
        for writer in self.writers:
            writer.close()


async def tcp_answer(running, source: str = "127.0.0.1") -> tuple[list[str], float]:
    """The A records of WEB over a new TCP connection from `source`, and how long that took."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    reply = await dns.asyncquery.tcp(dns.message.make_query(WEB, "A"), running.host,
                                     port=running.port, source=source, timeout=TIMEOUT)
    return addresses(reply), loop.time() - started


async def udp_answer(running) -> list[str]:
    reply = await dns.asyncquery.udp(dns.message.make_query(WEB, "A"), running.host,
                                     port=running.port, timeout=TIMEOUT)
    return addresses(reply)


async def settled(condition, within: float = TIMEOUT) -> bool:
    """Polls `condition` (the server accepts asynchronously) until true or `within` passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


@pytest.fixture
async def abused():
    """A server with the given options, and the sockets the test opens against it."""
    opened: list[tuple] = []

    async def start(**options):
        running = await serve(**options)
        sockets = Sockets(running)
        opened.append((running, sockets))
        return running, sockets

    yield start
    for running, sockets in opened:
        sockets.close()
        await running.server.stop()


async def test_a_client_hoarding_idle_connections_only_loses_its_own(abused):
    """The measured incident: one client opened 260 idle connections and TCP was gone for
    everyone. With the defaults (32 per client), the hoarder keeps its 32 newest; its older
    ones are closed as it opens more, and everyone else is served at once."""
    running, sockets = await abused()
    server = running.server
    hoarder = [await sockets.open("127.0.0.2") for _ in range(260)]
    for batch in range(0, 260, 26):  # UDP is answered while the hoard builds up
        assert await udp_answer(running) == WEB_ADDRESSES, batch
    assert await settled(lambda: server.counters.tcp_connections == 260)

    answer, took = await tcp_answer(running)
    assert answer == WEB_ADDRESSES and took < PROMPT

    assert server.tcp.table.held_by("127.0.0.2") == 32
    assert server.counters.tcp_evicted == 228 and server.counters.tcp_refused == 0
    closed = await asyncio.gather(*(closed_by_server(reader, TIMEOUT) for reader, _ in hoarder[:228]))
    assert all(closed)  # the oldest ones went
    reader, writer = hoarder[-1]  # the newest still answers
    query = dns.message.make_query(WEB, "A")
    writer.write(framed(query))
    reply = await read_reply(reader)
    assert reply.id == query.id and addresses(reply) == WEB_ADDRESSES


async def test_a_full_server_takes_slots_from_the_heaviest_clients_not_the_light_ones(abused):
    """Five clients open 8 connections each (40) into a server that holds 24 in all. A light
    client's connection, the longest idle of all, survives; the flood only evicts the heavy
    clients' idle connections; a newcomer is served at once."""
    running, sockets = await abused(max_tcp_connections=24, tcp_connections_per_client=8)
    server = running.server
    light_reader, light_writer = await sockets.open("127.0.0.9")
    first = dns.message.make_query(WEB, "A")
    light_writer.write(framed(first))
    assert addresses(await read_reply(light_reader)) == WEB_ADDRESSES

    for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"):
        for _ in range(8):
            await sockets.open(source)
        assert await udp_answer(running) == WEB_ADDRESSES, source
    assert await settled(lambda: server.counters.tcp_connections == 41)
    assert server.tcp.table.count == 24

    answer, took = await tcp_answer(running, "127.0.0.1")
    assert answer == WEB_ADDRESSES and took < PROMPT
    assert server.counters.tcp_evicted == 42 - 24 and server.counters.tcp_refused == 0

    second = dns.message.make_query(BIG, "A")  # the light client's connection still works
    light_writer.write(framed(second))
    reply = await read_reply(light_reader)
    assert reply.id == second.id and addresses(reply) == sorted(BIG_ADDRESSES)
    assert server.tcp.table.held_by("127.0.0.9") == 1
    assert max(server.tcp.table.held_by(f"127.0.0.{n}") for n in range(2, 7)) <= 5


async def test_idle_connections_are_closed_after_the_idle_timeout(abused):
    running, sockets = await abused(tcp_idle_timeout=0.3)
    loop = asyncio.get_running_loop()
    silent_reader, _ = await sockets.open("127.0.0.1")  # never sends anything
    reader, writer = await sockets.open("127.0.0.2")
    query = dns.message.make_query(WEB, "A")
    writer.write(framed(query))
    assert addresses(await read_reply(reader)) == WEB_ADDRESSES
    idle_from = loop.time()

    assert await closed_by_server(reader, TIMEOUT)
    assert 0.25 < loop.time() - idle_from < 0.3 + PROMPT
    assert await closed_by_server(silent_reader, TIMEOUT)
    assert running.server.counters.tcp_timeouts == 2
    assert await udp_answer(running) == WEB_ADDRESSES


async def test_a_slow_loris_is_closed_before_it_finishes_its_query(abused):
    """One byte every 50 ms keeps well inside the 5 s idle timeout, byte by byte; the whole
    message has 0.3 s, so the connection goes long before its ~35 bytes are in."""
    running, sockets = await abused(tcp_idle_timeout=5.0, tcp_message_timeout=0.3)
    loop = asyncio.get_running_loop()
    reader, writer = await sockets.open("127.0.0.2")
    wire = framed(dns.message.make_query(WEB, "A"))

    async def trickle() -> int:
        for sent, byte in enumerate(wire):  # bounded by the message's length
            try:
                writer.write(bytes([byte]))
                await writer.drain()
            except ConnectionError:
                return sent
            await asyncio.sleep(0.05)
        return len(wire)

    started = loop.time()
    trickling = asyncio.create_task(trickle())
    try:
        answer, took = await tcp_answer(running)  # served while the loris trickles
        assert answer == WEB_ADDRESSES and took < PROMPT
        assert await closed_by_server(reader, TIMEOUT)  # no reply, just the end
        assert loop.time() - started < 0.3 + PROMPT
    finally:
        trickling.cancel()
        await asyncio.gather(trickling, return_exceptions=True)
    assert running.server.counters.tcp_timeouts == 1
    assert running.server.tcp.table.held_by("127.0.0.2") == 0


async def test_a_client_that_never_reads_its_replies_is_closed(abused):
    """Pipelined queries for a 1 KB answer, never read: once the socket buffers are full,
    writing one reply takes longer than the message timeout and the connection goes."""
    running, sockets = await abused(tcp_idle_timeout=5.0, tcp_message_timeout=0.3)
    # Small kernel buffers on both ends (accepted sockets inherit the listener's), so they
    # fill after a few dozen replies rather than the megabytes loopback autotunes to.
    for listening in running.server._tcp.sockets:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills fast
    client.setblocking(False)
    try:
        client.bind(("127.0.0.2", 0))
        await asyncio.wait_for(
            asyncio.get_running_loop().sock_connect(client, (running.host, running.port)), TIMEOUT)
        reader, writer = await asyncio.open_connection(sock=client)
        sockets.writers.append(writer)
        writer.write(framed(*(dns.message.make_query(BIG, "A") for _ in range(1000))))
        assert await settled(lambda: running.server.counters.tcp_timeouts == 1)
        assert running.server.counters.answered < 1000
        answer, took = await tcp_answer(running)
        assert answer == WEB_ADDRESSES and took < PROMPT
    finally:
        client.close()


async def test_pipelined_queries_are_all_answered_in_order(abused):
    running, sockets = await abused()
    reader, writer = await sockets.open("127.0.0.1")
    names = [WEB, BIG, "nope.marathon.mesos."] * 40
    queries = [dns.message.make_query(name, "A") for name in names]
    writer.write(framed(*queries))  # all 120 before any reply is read
    expected = {WEB: WEB_ADDRESSES, BIG: sorted(BIG_ADDRESSES), "nope.marathon.mesos.": []}
    for query, name in zip(queries, names):
        reply = await read_reply(reader)
        assert reply.id == query.id and reply.question == query.question
        assert addresses(reply) == expected[name]
        assert reply.rcode() == (dns.rcode.NXDOMAIN if name.startswith("nope") else dns.rcode.NOERROR)
    assert running.server.counters.tcp_connections == 1


async def test_udp_is_answered_while_one_connection_streams_queries(abused):
    """2,000 pipelined queries (about 0.5 s of work) on one connection sit in the server's
    buffer at once; a UDP query sent right after is answered before that stream is through,
    not after it. Client and server share this loop, so the server's own count of replies
    tells when the UDP one went out."""
    running, sockets = await abused()
    reader, writer = await sockets.open("127.0.0.2")
    count = 2000
    writer.write(framed(*(dns.message.make_query(WEB, "A") for _ in range(count))))
    read = 0

    async def read_all() -> None:  # frames only: parsing 2,000 replies would be the slow part
        nonlocal read
        for _ in range(count):
            size = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), TIMEOUT), "big")
            await asyncio.wait_for(reader.readexactly(size), TIMEOUT)
            read += 1

    reading = asyncio.create_task(read_all())
    try:
        assert await udp_answer(running) == WEB_ADDRESSES
        assert running.server.counters.answered < count
        await asyncio.wait_for(reading, 10 * TIMEOUT)
    finally:
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
    assert read == count
