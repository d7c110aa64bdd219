"""DNS over TCP for the node's server (RFC 7766), and the limits that keep one client from
taking TCP away from the others.

Framing: a 2-byte length, then the message. Queries on one connection are answered in order,
and pipelined queries (several written before any reply is read) are all answered.

Limits, all per `TcpConnections`:
- `per_client` connections per source address. A client at its limit that opens another one
  gets it, and its own longest-idle connection is closed instead: an abuser only churns its
  own slots, and a client that leaks connections keeps working. Keyed by address, not by an
  IPv6 /64: the clients of a node-local server are the node's containers, which share the
  node's overlay prefix.
- `total` connections. When full, the longest-idle connection of the client holding the
  most is closed for the newcomer (the policy is `ConnectionTable._victim`). Eviction rather
  than reserved capacity: a reservation leaves slots unused while one client is refused, and
  still needs a rule for when the reserve is full; eviction uses every slot and only ever
  costs the heaviest client an idle connection, which RFC 7766 lets a server close when it
  needs the resources (clients must be ready to reconnect). A new connection is refused only
  when every connection it could take the place of is busy answering.
- `idle_timeout`: how long to wait for the first byte of the next query.
- `message_timeout`: how long the rest of one query may take once its first byte arrived,
  and how long writing one reply may take. A slow-loris sending a byte at a time is closed
  after it, however steady its trickle; so is a client that sends queries and never reads.

No cap on queries per connection: eviction and the timeouts already bound what a connection
can hold; closing after N queries would drop whatever a pipelining client had already sent
past N; and the usual reason for a cap, spreading clients over several servers behind one
address, does not apply to a node-local server.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from appliers.dns.server import Counters


class Connection:
    """One accepted TCP connection, as the limits see it."""

    __slots__ = ("client", "task", "busy", "waiting_since")

    def __init__(self, client: str, task: asyncio.Task, now: float) -> None:
        self.client = client
        self.task = task
        self.busy = False  # answering a query it sent: not to be evicted for that time
        self.waiting_since = now  # end of its last reply (or its accept): idle since then

    def __repr__(self) -> str:
        return f"Connection({self.client}, busy={self.busy}, waiting_since={self.waiting_since:.3f})"


class ConnectionTable:
    """Who holds which open connection, and who gives one up when a new one arrives. No I/O:
    evicting means cancelling the connection's task, which closes its socket."""

    def __init__(self, per_client: int, total: int) -> None:
        if per_client < 1 or total < 1:
            raise ValueError("TCP connection limits must be at least 1")
        self.per_client = per_client
        self.total = total
        self.count = 0
        # per client, its connections from longest idle to most recently active
        self._by_client: dict[str, OrderedDict[Connection, None]] = {}

    def held_by(self, client: str) -> int:
        return len(self._by_client.get(client, ()))

    def admit(self, connection: Connection) -> tuple[bool, Connection | None]:
        """(admitted, the connection evicted to make room, if any)."""
        held = self._by_client.get(connection.client)
        victim = None
        if held is not None and len(held) >= self.per_client:
            victim = _longest_idle(held)
        elif self.count >= self.total:
            victim = self._victim()
        else:
            self._add(connection)
            return True, None
        if victim is None:  # every candidate is busy answering: refuse the newcomer
            return False, None
        self.release(victim)
        victim.task.cancel()
        self._add(connection)
        return True, victim

    def release(self, connection: Connection) -> None:
        """Forgets `connection`; a second call for the same one does nothing."""
        held = self._by_client.get(connection.client)
        if held is None or connection not in held:
            return
        del held[connection]
        self.count -= 1
        if not held:
            del self._by_client[connection.client]

    def became_idle(self, connection: Connection, now: float) -> None:
        connection.busy = False
        connection.waiting_since = now
        held = self._by_client.get(connection.client)
        if held is not None and connection in held:
            held.move_to_end(connection)

    def _add(self, connection: Connection) -> None:
        self._by_client.setdefault(connection.client, OrderedDict())[connection] = None
        self.count += 1

    def _victim(self) -> Connection | None:
        """The longest-idle connection of the client holding the most connections; between
        clients holding as many, the one idle the longest. A client holding few connections
        therefore keeps them while anyone holds more. One pass over the clients, only when
        the table is full."""
        best: Connection | None = None
        best_rank: tuple[int, float] | None = None
        for held in self._by_client.values():
            oldest = _longest_idle(held)
            if oldest is None:
                continue
            rank = (len(held), -oldest.waiting_since)
            if best_rank is None or rank > best_rank:
                best, best_rank = oldest, rank
        return best


def _longest_idle(held: OrderedDict[Connection, None]) -> Connection | None:
    return next((connection for connection in held if not connection.busy), None)


Reply = Callable[[bytes, str], Awaitable[bytes | None]]


class TcpConnections:
    """Serves each accepted connection (`serve` is the `asyncio.start_server` callback) within
    the limits. `reply(query, client)` is the server's answer, forwarded if need be; None
    means the message was not a query."""

    def __init__(self, reply: Reply, counters: Counters, *, per_client: int, total: int,
                 idle_timeout: float, message_timeout: float) -> None:
        self.reply = reply
        self.counters = counters
        self.table = ConnectionTable(per_client, total)
        self.idle_timeout = idle_timeout
        self.message_timeout = message_timeout
        self.tasks: set[asyncio.Task] = set()  # every connection task still running, for stop

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        connection = Connection(writer.get_extra_info("peername")[0], task, loop.time())
        admitted, evicted = self.table.admit(connection)
        if not admitted:
            self.counters.tcp_refused += 1
            writer.transport.abort()  # nothing to flush; free the socket now
            return
        if evicted is not None:
            self.counters.tcp_evicted += 1
        self.tasks.add(task)
        self.counters.tcp_connections += 1
        try:
            await self._queries(connection, reader, writer)
        except TimeoutError:
            self.counters.tcp_timeouts += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away: the normal end of a connection
        except asyncio.CancelledError:
            pass  # evicted, or `stop`; asyncio would log it as an error otherwise
        finally:
            self.table.release(connection)
            self.tasks.discard(task)
            writer.close()

    async def _queries(self, connection: Connection, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        counters = self.counters
        while True:  # bounded by the timeouts, eviction and the peer closing
            async with asyncio.timeout(self.idle_timeout) as deadline:
                first = await reader.readexactly(1)
                # from the first byte on, the whole message has one deadline: trickling
                # bytes does not extend it
                deadline.reschedule(loop.time() + self.message_timeout)
                size = int.from_bytes(first + await reader.readexactly(1), "big")
                query = await reader.readexactly(size)
            connection.busy = True
            counters.queries += 1
            reply = await self.reply(query, connection.client)
            if reply is None:  # not a query: nothing sane to say on this stream any more
                counters.dropped += 1
                return
            writer.write(len(reply).to_bytes(2, "big") + reply)
            async with asyncio.timeout(self.message_timeout):
                await writer.drain()
            counters.count_reply(reply, tcp=True)
            self.table.became_idle(connection, loop.time())
            # Pipelined queries already sit in the reader's buffer, and neither readexactly
            # nor drain yields while data is buffered: without this, one client streaming
            # queries would hold the loop, and UDP and every other connection would wait.
            await asyncio.sleep(0)
