"""The Mesos producer loop: subscribe, fall back to polling, reconnect with backoff.

Every SUBSCRIBE starts with a full snapshot, so each reconnect is also a resync: whatever
was missed while the stream was down is repaired by the diff against the topics.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import orjson

from producers.backoff import Backoff, sleep_or_stop
from producers.mesos.client import MesosClient, SubscribeUnsupported
from producers.mesos.observer import MesosObserver
from producers.mesos.recordio import RecordIODecoder
from producers.mesos.snapshot import parse_master_state
from producers.problems import InputRejected
from schemas.headers import Observation

log = logging.getLogger(__name__)

# Mesos promises a HEARTBEAT every heartbeat_interval_seconds; three missed ones = dead stream.
MISSED_HEARTBEATS = 3


class DeadStream(Exception):
    pass


class MesosLoop:
    def __init__(
        self,
        client: MesosClient,
        observer: MesosObserver,
        poll_only: bool = False,
        poll_interval: float = 2.0,
        resubscribe_after: float = 60.0,
    ):
        self.client = client
        self.observer = observer
        self.poll_only = poll_only
        self.poll_interval = poll_interval
        self.resubscribe_after = resubscribe_after
        self.connected = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        ticker = asyncio.create_task(self._tick(stop))
        backoff = Backoff()
        try:
            while not stop.is_set():
                try:
                    if self.poll_only:
                        await self._poll(stop, until=float("inf"))
                    else:
                        await self._subscribe(stop, backoff)
                    continue
                except SubscribeUnsupported as error:
                    log.warning("%s; polling /master/state for %ss", error, self.resubscribe_after)
                    await self._poll(stop, until=time.monotonic() + self.resubscribe_after)
                    continue
                except InputRejected as problem:  # framing lost or truncated: resync on a new stream
                    self.observer.publisher.reject(problem)
                except (aiohttp.ClientError, OSError, DeadStream, asyncio.TimeoutError) as error:
                    log.warning("Mesos stream from %s failed: %r", self.client.url, error)
                self.connected.clear()
                await sleep_or_stop(stop, backoff.next_delay())
        finally:
            ticker.cancel()

    async def _subscribe(self, stop: asyncio.Event, backoff: Backoff) -> None:
        async with self.client.subscribe() as (leader, response):
            decoder = RecordIODecoder()
            log.info("subscribed to the Mesos master %s:%s", leader.hostname, leader.port)
            while not stop.is_set():
                interval = self.observer.heartbeat_interval or 15.0
                try:
                    chunk = await asyncio.wait_for(response.content.readany(), MISSED_HEARTBEATS * interval)
                except asyncio.TimeoutError:
                    raise DeadStream(f"no heartbeat for {MISSED_HEARTBEATS * interval:.0f}s") from None
                if not chunk:
                    decoder.finish()
                    raise DeadStream("the master closed the stream")
                for record in decoder.feed(chunk):
                    self._apply(record, leader)
                    backoff.reset()
                    self.connected.set()

    def _apply(self, record: bytes, leader) -> None:
        obs = Observation.now()
        try:
            event = orjson.loads(record)
        except orjson.JSONDecodeError as error:
            self.observer.publisher.reject(InputRejected("recordio-record", f"malformed JSON: {error}", record))
            return
        self.observer.on_event(event, leader, time.time(), obs)

    async def _poll(self, stop: asyncio.Event, until: float) -> None:
        while not stop.is_set() and time.monotonic() < until:
            obs = Observation.now()
            try:
                _, body = await self.client.master_state()
                snapshot, leader, problems = parse_master_state(body)
                self.observer.on_snapshot(snapshot, leader, time.time(), obs)
                for problem in problems.found:
                    self.observer.publisher.reject(problem)
                self.connected.set()
            except InputRejected as problem:
                self.observer.publisher.reject(problem)
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as error:
                log.warning("polling %s failed: %r", self.client.url, error)
            await sleep_or_stop(stop, self.poll_interval)

    async def _tick(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(1.0)
            self.observer.on_tick(time.time(), Observation.now())

