"""The Marathon producer loop: SSE with a full resync on connect and on a timer.

The resync runs right after the event stream is attached, so no change can fall between
the snapshot and the first event. A stream that sends nothing (not even a keep-alive) for
``silence_timeout`` seconds is presumed dead and reopened. A resync that fails on connect
also reopens the stream: the side counts as in sync only after a full resync.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp

from producers.backoff import Backoff
from runtime.blocking import sleep_or_stop
from producers.history_gap import Gap
from producers.marathon.client import MarathonClient
from producers.marathon.observer import MarathonObserver
from producers.marathon.sse import MAX_EVENT_BYTES, MAX_LINE_BYTES, SSEDecoder
from producers.marks import ProducerMarks
from producers.problems import InputRejected
from runtime.metrics import PRODUCER_CLOCK, PRODUCER_RECONNECTS, PRODUCER_SYNCS
from schemas.headers import Observation

log = logging.getLogger(__name__)


class SilentStream(Exception):
    pass


class ResyncFailed(Exception):
    pass


class MarathonLoop:
    def __init__(
        self,
        client: MarathonClient,
        observer: MarathonObserver,
        resync_interval: float = 180.0,
        silence_timeout: float = 60.0,
        marks: ProducerMarks | None = None,
        max_line_bytes: int = MAX_LINE_BYTES,
        max_event_bytes: int = MAX_EVENT_BYTES,
    ):
        self.client = client
        self.observer = observer
        self.resync_interval = resync_interval
        self.silence_timeout = silence_timeout
        self.marks = marks
        self.max_line_bytes = max_line_bytes
        self.max_event_bytes = max_event_bytes
        self.connected = asyncio.Event()
        self._last_alive: float | None = None  # wall clock of the last byte of a synced stream

    async def run(self, stop: asyncio.Event) -> None:
        backoff = Backoff()
        while not stop.is_set():
            try:
                await self._stream(stop, backoff)
            except InputRejected as problem:  # an oversized line or event: the stream cannot be trusted
                self.observer.publisher.reject(problem)
                self._lost()
            except (aiohttp.ClientError, OSError, SilentStream, ResyncFailed, asyncio.TimeoutError) as error:
                log.warning("Marathon event stream from %s failed: %r", self.client.url, error)
                self._lost()
            await sleep_or_stop(stop, backoff.next_delay())

    def _lost(self) -> None:
        self.connected.clear()
        PRODUCER_RECONNECTS.labels("marathon").inc()
        if self.marks:
            self.marks.lost()
        if self._last_alive is not None:
            self.observer.expect_gap(Gap(self._last_alive, "stream lost"))
            self._last_alive = None

    async def _stream(self, stop: asyncio.Event, backoff: Backoff) -> None:
        async with self.client.events() as response:
            if not await self._resync():
                raise ResyncFailed("the resync on connect failed")
            backoff.reset()
            self.connected.set()
            next_resync = time.monotonic() + self.resync_interval
            decoder = SSEDecoder(self.max_line_bytes, self.max_event_bytes)
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
                self._last_alive = time.time()
                PRODUCER_CLOCK.contact("marathon")  # keep-alives count: the stream is alive
                for event in decoder.feed(chunk):
                    PRODUCER_CLOCK.event("marathon")
                    for app_id in self.observer.on_event(event, Observation.now()):
                        await self._fetch_app(app_id)

    async def _resync(self) -> bool:
        """A full resync; True once it is published and (with marks) delivered and marked."""
        obs = Observation.now()
        try:
            self.observer.on_apps(await self.client.apps(), obs)
        except InputRejected as problem:  # keep the tables as they are; the next resync retries
            self.observer.publisher.reject(problem)
            return False
        PRODUCER_SYNCS.labels("marathon").inc()
        PRODUCER_CLOCK.contact("marathon")
        self._last_alive = time.time()
        if self.marks:
            await self.marks.synced()
        return True

    async def _fetch_app(self, app_id: str) -> None:
        obs = Observation.now()
        try:
            body = await self.client.app(app_id)
        except InputRejected as problem:
            self.observer.publisher.reject(problem)
            return
        self.observer.on_app(app_id, body, obs)
