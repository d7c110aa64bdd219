"""Open event streams (Mesos SUBSCRIBE and Marathon SSE) and what gets written to them.

Each stream has its own queue and one writer loop, so events reach a client in the
order the model changed, and a slow client only delays itself. Heartbeats are paced
per stream from the moment it opened. The fault switches live here too: silence
(the connection stays open, nothing is written), raw injected bytes, and drops.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Awaitable, Callable

MESOS = "mesos"
MARATHON = "marathon"


@dataclass(frozen=True)
class Close:
    """Queued to end a stream: cleanly (end of body) or by resetting the connection."""

    reset: bool = False


class Stream:
    def __init__(self, side: str, event_types: frozenset[str] | None = None):
        self.side = side
        self.event_types = event_types
        self.queue: asyncio.Queue[bytes | Close] = asyncio.Queue()

    def wants(self, event_type: str) -> bool:
        return self.event_types is None or event_type in self.event_types

    def offer(self, data: bytes | Close) -> None:
        if data:
            self.queue.put_nowait(data)


class Hub:
    def __init__(self, heartbeat_interval: float):
        self.heartbeat_interval = heartbeat_interval
        self.streams: set[Stream] = set()
        self.silenced = {MESOS: False, MARATHON: False}

    def open(self, side: str, event_types: frozenset[str] | None = None) -> Stream:
        stream = Stream(side, event_types)
        self.streams.add(stream)
        return stream

    def discard(self, stream: Stream) -> None:
        self.streams.discard(stream)

    def of(self, side: str) -> list[Stream]:
        return [s for s in self.streams if s.side == side]

    def publish_mesos(self, records: bytes) -> None:
        if records and not self.silenced[MESOS]:
            for stream in self.of(MESOS):
                stream.offer(records)

    def publish_marathon(self, events: list[tuple[str, bytes]]) -> None:
        if events and not self.silenced[MARATHON]:
            for stream in self.of(MARATHON):
                stream.offer(b"".join(data for kind, data in events if stream.wants(kind)))

    def inject(self, side: str, raw: bytes) -> int:
        """Write raw bytes into every open stream of a side, even a silenced one."""
        streams = self.of(side)
        for stream in streams:
            stream.offer(raw)
        return len(streams)

    def drop(self, side: str | None = None, reset: bool = False) -> int:
        streams = [s for s in self.streams if side is None or s.side == side]
        for stream in streams:
            stream.offer(Close(reset))
            self.streams.discard(stream)
        return len(streams)

    async def serve(self, stream: Stream, request, response, heartbeat: bytes, beat_at_once: bool,
                    first: bytes = b"") -> None:
        """Pump ``stream`` into an HTTP response, then end it the way its Close asks.

        A client that went away is not an error; the stream is discarded either way.
        """
        try:
            if first:
                await response.write(first)
            closing = await self.pump(stream, response.write, heartbeat, beat_at_once)
            if closing.reset and request.transport is not None:
                request.transport.close()
            elif not closing.reset:
                await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client went away
        finally:
            self.discard(stream)

    async def pump(self, stream: Stream, write: Callable[[bytes], Awaitable[None]],
                   heartbeat: bytes, beat_at_once: bool) -> Close:
        """Write the stream's queue out, with a heartbeat every interval, until closed."""
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + (0.0 if beat_at_once else self.heartbeat_interval)
        while True:
            try:
                item = await asyncio.wait_for(stream.queue.get(), max(0.0, next_beat - loop.time()))
            except asyncio.TimeoutError:
                next_beat = loop.time() + self.heartbeat_interval
                if not self.silenced[stream.side]:
                    await write(heartbeat)
                continue
            if isinstance(item, Close):
                return item
            await write(item)
