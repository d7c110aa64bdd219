"""The Marathon producer loop: SSE with a full resync on connect and on a timer.

The resync runs right after the event stream is attached, so no change can fall between
the snapshot and the first event. A stream that sends nothing (not even a keep-alive) for
``silence_timeout`` seconds is presumed dead and reopened.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp

from producers.backoff import Backoff, sleep_or_stop
from producers.marathon.client import MarathonClient
from producers.marathon.observer import MarathonObserver
from producers.marathon.sse import SSEDecoder
from producers.problems import InputRejected
from schemas.headers import Observation

log = logging.getLogger(__name__)


class SilentStream(Exception):
    pass


class MarathonLoop:
    def __init__(
        self,
        client: MarathonClient,
        observer: MarathonObserver,
        resync_interval: float = 180.0,
        silence_timeout: float = 60.0,
    ):
        self.client = client
        self.observer = observer
        self.resync_interval = resync_interval
        self.silence_timeout = silence_timeout
        self.connected = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        backoff = Backoff()
        while not stop.is_set():
            try:
                await self._stream(stop, backoff)
            except (aiohttp.ClientError, OSError, SilentStream, asyncio.TimeoutError) as error:
                log.warning("Marathon event stream from %s failed: %r", self.client.url, error)
            self.connected.clear()
            await sleep_or_stop(stop, backoff.next_delay())

    async def _stream(self, stop: asyncio.Event, backoff: Backoff) -> None:
        async with self.client.events() as response:
            await self._resync()
            backoff.reset()
            self.connected.set()
            next_resync = time.monotonic() + self.resync_interval
            decoder = SSEDecoder()
            last_byte = time.monotonic()
            while not stop.is_set():
                now = time.monotonic()
                if now >= next_resync:
                    await self._resync()
                    next_resync = now + self.resync_interval
                wait = min(self.silence_timeout - (now - last_byte), next_resync - now)
                try:
                    chunk = await asyncio.wait_for(response.content.readany(), max(wait, 0.01))
                except asyncio.TimeoutError:
                    if time.monotonic() - last_byte >= self.silence_timeout:
                        raise SilentStream(f"nothing for {self.silence_timeout:.0f}s") from None
                    continue
                if not chunk:
                    raise aiohttp.ClientPayloadError("Marathon closed the event stream")
                last_byte = time.monotonic()
                for event in decoder.feed(chunk):
                    for app_id in self.observer.on_event(event, Observation.now()):
                        await self._fetch_app(app_id)

    async def _resync(self) -> None:
        obs = Observation.now()
        body = await self.client.apps()
        try:
            self.observer.on_apps(body, obs)
        except InputRejected as problem:  # keep the tables as they are; the next resync retries
            self.observer.publisher.reject(problem)

    async def _fetch_app(self, app_id: str) -> None:
        obs = Observation.now()
        self.observer.on_app(app_id, await self.client.app(app_id), obs)
