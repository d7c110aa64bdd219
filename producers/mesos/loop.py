"""The Mesos producer loop: subscribe, fall back to polling, reconnect with backoff.

Every SUBSCRIBE starts with a full snapshot, so each reconnect is also a resync: whatever
was missed while the stream was down is repaired by the diff against the topics, the
history of the tasks that ended meanwhile is rebuilt from the master's completed tasks, and
the readiness mark says in sync again once that sync is delivered.

The operator API carries no scheduler PIDs, and Mesos-DNS names ``_framework._tcp.<fw>.mesos``
from them: after every SUBSCRIBED and every framework added or updated, the legacy
``/master/frameworks`` is read (in the background, one read at a time, again if more changes
came meanwhile) and the schedulers' addresses are added to the frameworks.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import orjson

from producers.backoff import Backoff
from runtime.blocking import sleep_or_stop
from producers.history_gap import Gap
from producers.marks import ProducerMarks
from producers.mesos.client import MesosClient, SubscribeUnsupported
from producers.mesos.normalize import framework_endpoints_of
from producers.mesos.observer import MesosObserver
from producers.mesos.recordio import MAX_RECORD_BYTES, RecordIODecoder
from producers.mesos.snapshot import parse_master_state
from producers.problems import InputRejected
from runtime.metrics import PRODUCER_CLOCK, PRODUCER_RECONNECTS, PRODUCER_SYNCS
from schemas.headers import Observation

log = logging.getLogger(__name__)

# Mesos promises a HEARTBEAT every heartbeat_interval_seconds; three missed ones = dead stream.
MISSED_HEARTBEATS = 3
# The events after which the schedulers' PIDs are read again from /master/frameworks.
FRAMEWORK_EVENTS = frozenset({"SUBSCRIBED", "FRAMEWORK_ADDED", "FRAMEWORK_UPDATED"})


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
        marks: ProducerMarks | None = None,
        max_record_bytes: int = MAX_RECORD_BYTES,
    ):
        self.client = client
        self.observer = observer
        self.poll_only = poll_only
        self.poll_interval = poll_interval
        self.resubscribe_after = resubscribe_after
        self.marks = marks
        self.max_record_bytes = max_record_bytes
        self.connected = asyncio.Event()
        self._last_alive: float | None = None  # wall clock of the last record of a live stream
        self._endpoints: asyncio.Task | None = None  # the /master/frameworks read in flight
        self._endpoints_again = False  # a framework changed while it was in flight

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
                except InputRejected as problem:  # framing lost, truncated or oversized: resync on a new stream
                    self.observer.publisher.reject(problem)
                    self._lost("stream lost")
                except (aiohttp.ClientError, OSError, DeadStream, asyncio.TimeoutError) as error:
                    log.warning("Mesos stream from %s failed: %r", self.client.url, error)
                    self._lost("stream lost")
                await sleep_or_stop(stop, backoff.next_delay())
        finally:
            ticker.cancel()
            if self._endpoints is not None:
                self._endpoints.cancel()

    def _lost(self, cause: str) -> None:
        """The stream is gone: not in sync, and history is unwatched from its last record on."""
        self.connected.clear()
        PRODUCER_RECONNECTS.labels("mesos").inc()
        if self.marks:
            self.marks.lost()
        if self._last_alive is not None:
            self.observer.expect_gap(Gap(self._last_alive, cause))
            self._last_alive = None

    async def _subscribe(self, stop: asyncio.Event, backoff: Backoff) -> None:
        async with self.client.subscribe() as (leader, response):
            decoder = RecordIODecoder(self.max_record_bytes)
            log.info("subscribed to the Mesos master %s:%s", leader.hostname, leader.port)
            while not stop.is_set():
                timeout = MISSED_HEARTBEATS * self.observer.heartbeat_interval  # clamped by the observer
                try:
                    chunk = await asyncio.wait_for(response.content.readany(), timeout)
                except asyncio.TimeoutError:
                    raise DeadStream(f"no heartbeat for {timeout:.0f}s") from None
                if not chunk:
                    decoder.finish()
                    raise DeadStream("the master closed the stream")
                for record in decoder.feed(chunk):
                    snapshots = self.observer.snapshots
                    self._apply(record, leader)
                    if self.observer.snapshots != snapshots:
                        PRODUCER_SYNCS.labels("mesos").inc()
                        self._last_alive = time.time()
                        backoff.reset()
                        self.connected.set()
                        if self.marks:
                            await self.marks.synced()
                    elif self._last_alive is not None:
                        self._last_alive = time.time()

    def _apply(self, record: bytes, leader) -> None:
        obs = Observation.now()
        PRODUCER_CLOCK.event("mesos")  # heartbeats too: a quiet but live master keeps this fresh
        try:
            event = orjson.loads(record)
        except orjson.JSONDecodeError as error:
            self.observer.publisher.reject(InputRejected("recordio-record", f"malformed JSON: {error}", record))
            return
        self.observer.on_event(event, leader, time.time(), obs)
        if isinstance(event, dict) and event.get("type") in FRAMEWORK_EVENTS:
            self._read_framework_endpoints()

    def _read_framework_endpoints(self) -> None:
        """Start a read of /master/frameworks, or ask the one in flight to read once more."""
        if self._endpoints is not None and not self._endpoints.done():
            self._endpoints_again = True
            return
        self._endpoints = asyncio.get_running_loop().create_task(self._framework_endpoints())

    async def _framework_endpoints(self) -> None:
        self._endpoints_again = True
        while self._endpoints_again:  # bounded: only framework events set it again
            self._endpoints_again = False
            try:
                endpoints = framework_endpoints_of(await self.client.master_frameworks())
            except InputRejected as problem:
                self.observer.publisher.reject(problem)
                return
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as error:
                # The frameworks keep what they have; the next SUBSCRIBED or framework event retries.
                log.warning("cannot read the schedulers' PIDs from %s/master/frameworks: %r", self.client.url, error)
                return
            self.observer.on_framework_endpoints(endpoints, Observation.now())

    async def _poll(self, stop: asyncio.Event, until: float) -> None:
        while not stop.is_set() and time.monotonic() < until:
            obs = Observation.now()
            try:
                body = await self.client.master_state()
                snapshot, leader, problems = parse_master_state(body)
                for problem in problems.found:
                    self.observer.publisher.reject(problem)
                self.observer.on_snapshot(snapshot, leader, time.time(), obs)
                PRODUCER_SYNCS.labels("mesos").inc()
                PRODUCER_CLOCK.contact("mesos")
                self._last_alive = time.time()
                self.connected.set()
                if self.marks:
                    await self.marks.synced()
            except InputRejected as problem:
                self.observer.publisher.reject(problem)
                self._lost("polling failed")
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as error:
                log.warning("polling %s failed: %r", self.client.url, error)
                self._lost("polling failed")
            await sleep_or_stop(stop, self.poll_interval)

    async def _tick(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(1.0)
            self.observer.on_tick(time.time(), Observation.now())
