"""One reconcile loop for every node role: a derived table in, the node's target (kernel, DNS
zones, HAProxy) brought to match it.

The contract (`Role`) is cilium statedb's and kube-proxy's, cut to what a node needs:
- ``decode``: one record of the followed table into a desired entry, or a refusal (raise
  ValueError); a refused record leaves the key's last good entry in place;
- ``observe``: the target's actual state, read back (never what the role last wrote), for the
  keys in scope or for everything;
- ``plan``: pure; desired and actual into the smallest change, where updates come before
  deletions and prunes and the latter two happen only when ``scope.may_remove``;
- ``apply``: the one side-effecting step (one nftables transaction, one zone swap); raises
  when it failed, and the target keeps its last good state.

The loop (`ReconcileLoop`) owns everything around that, identically for every role:
- catch-up: read the whole table before the first apply;
- readiness: the role becomes *complete* once a ready processor mark has been seen and the
  table has been read to the end offsets queried after that (then it holds everything that
  mark reflects), and *ready* once complete and every role it waits for is ready. Before
  complete nothing is deleted or pruned; once ready it stays ready, whatever happens upstream;
- batching: records only mark keys dirty; one pass applies everything dirty at once;
- a periodic full pass (everything read back and planned) that repairs drift, and a full pass
  after any failure;
- keeping the last good state: a failed apply is logged, counted and retried, a refused record
  is logged and counted;
- convergence: applied time minus the producer's observed time (record headers), per record.

Runtime code: it knows no stage, only the seams (`Follower`, `ProcessorGate`) it is given.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from runtime.blocking import in_executor_with_context
from runtime.kafka.follower import CatchUpProgress, Offsets
from runtime.kafka.reader import ConsumedRecord, Halted
from runtime.logs import log_context
from runtime.metrics import APPLY_SECONDS, CONVERGENCE
from schemas.headers import RecordMeta

log = logging.getLogger(__name__)

Entry = TypeVar("Entry")
Actual = TypeVar("Actual")
PlanT = TypeVar("PlanT")


@dataclass(frozen=True)
class Scope:
    """What one pass covers. ``keys`` None: everything (read all back, plan all, prune)."""

    keys: frozenset[str] | None
    may_remove: bool  # deletions and prunes allowed: the role is complete

    @property
    def full(self) -> bool:
        return self.keys is None


class Role(Generic[Entry, Actual, PlanT]):
    """What a node role brings to the loop. Subclasses set ``name`` and implement the four
    steps; the hooks have defaults."""

    name: str = "role"
    # observe, plan and apply run on a thread of their own (kernel calls block); False: on the
    # event loop (the DNS zones, which the event loop also serves queries from).
    threaded: bool = False
    # The start-up load (the catch-up and the first pass that applies it) makes many
    # long-lived objects and no cycles: the collector waits while it runs, and what it made is
    # frozen out of the collector's sight afterwards.
    freeze_after_load: bool = False

    def decode(self, key: str, value: bytes) -> Entry:
        raise NotImplementedError

    def observe(self, scope: Scope) -> Actual:
        raise NotImplementedError

    def plan(self, desired: Mapping[str, Entry], actual: Actual, scope: Scope) -> PlanT | None:
        """Pure. A falsy result (None, or a plan whose bool is False) means nothing to do."""
        raise NotImplementedError

    def apply(self, plan: PlanT) -> None:
        raise NotImplementedError

    async def open(self) -> None:
        """Before the catch-up (the DNS role starts listening: SERVFAIL until ready)."""

    def loaded(self) -> None:
        """Once, after the start-up catch-up (before the first pass applies it): drop what
        only reading the whole table needed."""

    async def close(self) -> None:
        """After the loop, also when it failed."""

    async def serve(self) -> None:
        """Called once when the role becomes ready (the DNS role answers from then on)."""


class Follower(Protocol):
    """The followed table (runtime.kafka.follower.TableFollower; a fake in unit tests)."""

    def catch_up(self, timeout: float, progress: Callable[[int, int], None] | None,
                 each: Callable[[ConsumedRecord], None] | None) -> object: ...

    def changes(self, timeout: float) -> list[ConsumedRecord]: ...

    def end_offsets(self, timeout: float = 30.0) -> Offsets: ...

    def reached(self, ends: Offsets) -> bool: ...

    def close(self) -> None: ...


class ProcessorGate(Protocol):
    """Whether a processor mark has said the loop's table is ready (runtime.kafka.status.TableGate)."""

    @property
    def processor_ready(self) -> bool: ...


class ReconcileLoop(Generic[Entry]):
    def __init__(self, role: Role, follower: Follower, gate: ProcessorGate, *,
                 waits_for: Sequence[ReconcileLoop] = (), resync_interval: float | None = 30.0,
                 catch_up_timeout: float = 600.0, retry_interval: float = 1.0, poll_interval: float = 0.1,
                 clock: Callable[[], float] = time.time, samples: int = 100_000) -> None:
        self.role, self.follower, self.gate = role, follower, gate
        self.waits_for = tuple(waits_for)
        self.resync_interval, self.catch_up_timeout = resync_interval, catch_up_timeout
        self.retry_interval, self.poll_interval, self.clock = retry_interval, poll_interval, clock
        self.desired: dict[str, Entry] = {}
        self.caught_up = asyncio.Event()  # the whole table read at start, and applied once
        self.complete = False  # holds everything a ready processor mark reflects: may remove
        self.ready = asyncio.Event()  # complete, and every role it waits for is ready
        self.convergence_s: deque[float] = deque(maxlen=samples)
        # Called with each applied batch of records and the time the target had them.
        self.on_applied: Callable[[list[ConsumedRecord], float], None] | None = None
        self.progress = CatchUpProgress(log, role.name)
        self.refused = 0  # records refused by decode
        self.failures = 0  # passes whose observe, plan or apply failed
        self.passes = 0  # passes that succeeded
        self.last_error: str | None = None
        self._changed: set[str] = set()
        self._full = True  # the next pass covers everything
        self._unmeasured: list[ConsumedRecord] = []
        self._listeners: list[Callable[[], None]] = []
        self._ready_ends: Offsets | None = None
        self._retry_at = 0.0

    # -- what other roles and the node use -------------------------------------------------

    def after_apply(self, listener: Callable[[], None]) -> None:
        """Call `listener` (on the event loop) after every successful pass."""
        self._listeners.append(listener)

    def feed(self, entries: Mapping[str, Entry | None]) -> None:
        """Desired entries from somewhere other than the table (another role's applied
        state), under keys of their own; None removes one. On the event loop."""
        for key, entry in entries.items():
            if entry is None:
                self.desired.pop(key, None)
            else:
                self.desired[key] = entry
            self._changed.add(key)

    @property
    def dirty(self) -> bool:
        return self._full or bool(self._changed)

    # -- the loop ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        # Every line this loop logs, its threads' and the Kafka client's included, says its role.
        topic = getattr(self.follower, "topic", None)
        with log_context(role=self.role.name, **({"topic": topic} if topic else {})):
            await self._run(stop)

    async def _run(self, stop: asyncio.Event) -> None:
        name = self.role.name
        loop = asyncio.get_running_loop()
        kafka = ThreadPoolExecutor(1, f"{name}-follow")
        target = ThreadPoolExecutor(1, f"{name}-apply") if self.role.threaded else None
        halting = asyncio.create_task(self._halt_follower_on(stop))
        try:
            await self.role.open()
            try:
                await self._load(loop, kafka, target)
            except Halted:
                return  # stopped during the catch-up (`finally` still closes everything)
            self.caught_up.set()
            next_resync = self._next_resync()
            while not stop.is_set():
                decoded, reached = await in_executor_with_context(loop, kafka, self._poll)
                self._take(decoded)
                if reached and not self.complete:
                    # Everything the mark reflects has been taken: the next (full) pass applies it
                    # and may prune what the table no longer has.
                    self.complete, self._full = True, True
                    log.info("%s: complete (a ready processor mark and every record it reflects)", name)
                if next_resync is not None and time.monotonic() >= next_resync:
                    self._full, next_resync = True, self._next_resync()
                if self.dirty and time.monotonic() >= self._retry_at:
                    await self._pass(loop, target)
                if self.complete and not self.ready.is_set() and not self.dirty and self._waited_for():
                    await self.role.serve()
                    self.ready.set()
                    log.info("%s: ready", name)
        except Halted:
            pass  # stopped while asking Kafka for end offsets
        finally:
            halting.cancel()
            await asyncio.to_thread(self.follower.close)
            kafka.shutdown(wait=True)
            if target:
                target.shutdown(wait=True)
            await self.role.close()

    async def _halt_follower_on(self, stop: asyncio.Event) -> None:
        """A stop interrupts the follower's thread (a catch-up, or Kafka unreachable) instead
        of waiting for it to end by itself; a follower without `halt` (a fake) never blocks."""
        await stop.wait()
        halt = getattr(self.follower, "halt", None)
        if halt is not None:
            halt.set()

    def _next_resync(self) -> float | None:
        return time.monotonic() + self.resync_interval if self.resync_interval else None

    def _waited_for(self) -> bool:
        return all(other.ready.is_set() for other in self.waits_for)

    async def _load(self, loop: asyncio.AbstractEventLoop, kafka: ThreadPoolExecutor,
                    target: ThreadPoolExecutor | None) -> None:
        """The start-up load: the whole table read, then applied by a first full pass."""
        name = self.role.name
        freeze = self.role.freeze_after_load
        collecting = freeze and gc.isenabled()
        if collecting:
            gc.disable()
        try:
            started = time.monotonic()
            reached = await in_executor_with_context(loop, kafka, self._catch_up)
            log.info("%s: caught up on %d entries in %.1fs", name, len(self.desired), time.monotonic() - started)
            self.role.loaded()
            if reached:
                # A ready mark was seen and the table read past it already: this first pass
                # may remove too, and no second full pass follows for completeness.
                self.complete = True
                log.info("%s: complete (a ready processor mark and every record it reflects)", name)
            await self._pass(loop, target)
        finally:
            if collecting:
                gc.enable()
        if freeze:
            gc.collect()
            gc.freeze()

    def _catch_up(self) -> bool:
        """In the follower's thread: the whole table into `desired`, decoded as it comes;
        whether that already reaches what a ready processor mark reflects."""

        def each(record: ConsumedRecord) -> None:
            # Neither dirty keys nor records to measure: the pass after the load covers the
            # whole table anyway, and holding every record until then would hold every
            # value's bytes at once (hundreds of MB for a large table).
            self._take_one(record, self._decode(record), False)

        self.follower.catch_up(self.catch_up_timeout, self.progress, each)
        self._full = True
        return self._reached()

    def _poll(self) -> tuple[list[tuple[ConsumedRecord, object]], bool]:
        """In the follower's thread: the next records, decoded, and whether the table has been
        read up to the end offsets taken after a ready processor mark was seen."""
        records = self.follower.changes(self.poll_interval)
        decoded = [(record, self._decode(record)) for record in records]
        return decoded, self._reached()

    def _reached(self) -> bool:
        """In the follower's thread: whether the table has been read up to the end offsets
        taken after a ready processor mark was seen."""
        if self.complete:
            return True
        if self._ready_ends is None and self.gate.processor_ready:
            self._ready_ends = self.follower.end_offsets()
        return self._ready_ends is not None and self.follower.reached(self._ready_ends)

    def _decode(self, record: ConsumedRecord) -> object:
        if record.key is None or record.value is None:
            return None
        try:
            return self.role.decode(record.key, record.value)
        except ValueError as error:
            return _Refused(str(error))

    def _take(self, decoded: list[tuple[ConsumedRecord, object]]) -> None:
        for record, entry in decoded:
            self._take_one(record, entry, True)

    def _take_one(self, record: ConsumedRecord, entry: object, dirty: bool) -> None:
        key = record.key
        if key is None:
            return
        if isinstance(entry, _Refused):
            self.refused += 1
            log.error("%s: record %s refused, keeping its last good value: %s", self.role.name, key, entry.why)
            return
        if entry is None:
            self.desired.pop(key, None)
        else:
            self.desired[key] = entry
        if dirty:
            self._changed.add(key)
            self._unmeasured.append(record)

    async def _pass(self, loop: asyncio.AbstractEventLoop, target: ThreadPoolExecutor | None) -> bool:
        """One observe-plan-apply pass over everything dirty."""
        scope = Scope(None if self._full else frozenset(self._changed), self.complete)
        changed, records = self._changed, self._unmeasured
        self._changed, self._full, self._unmeasured = set(), False, []
        try:
            if target is not None:
                applied_in = await in_executor_with_context(loop, target, self._observe_plan_apply, scope)
            else:
                applied_in = self._observe_plan_apply(scope)
        except Exception as error:  # noqa: BLE001 - any failure: keep the last good state, retry
            self.failures += 1
            self.last_error = f"{type(error).__name__}: {error}"
            log.error("%s: apply failed, the target keeps its last good state (retry in %.1fs): %s",
                      self.role.name, self.retry_interval, self.last_error)
            self._changed |= changed
            self._full = True  # read everything back next time: the failure may have left anything
            self._unmeasured = records + self._unmeasured
            self._retry_at = time.monotonic() + self.retry_interval
            return False
        self.passes += 1
        self.last_error = None
        at = self.clock()
        converged = []
        for record in records:
            meta = RecordMeta.from_headers(record.headers)
            if meta:
                converged.append(at - meta.observed_ns / 1e9)
        self.convergence_s.extend(converged)
        # Observed here, on the event loop, where the node's /metrics reads them.
        CONVERGENCE.observe(self.role.name, converged)
        if applied_in is not None:
            APPLY_SECONDS.observe(self.role.name, (applied_in,))
        if records and self.on_applied:
            self.on_applied(records, at)
        for listener in self._listeners:
            listener()
        return True

    def _observe_plan_apply(self, scope: Scope) -> float | None:
        """Seconds the apply step took; None when there was nothing to apply."""
        actual = self.role.observe(scope)
        plan = self.role.plan(self.desired, actual, scope)
        if not plan:
            return None
        started = time.perf_counter()
        self.role.apply(plan)
        return time.perf_counter() - started


@dataclass(frozen=True)
class _Refused:
    why: str


class ProcessorReady:
    """A ProcessorGate that is simply set (unit tests; tools that need no readiness chain)."""

    def __init__(self, ready: bool = False) -> None:
        self.processor_ready = ready


@dataclass(frozen=True)
class Dependency:
    """`role` becomes ready only after `waits_for` is. With `export` and `take`, after each
    pass of `waits_for` its applied state (`export`: key -> `exported` value) becomes desired
    entries of `role` (`take`). The two halves are apart so the state can cross processes:
    DNS workers (appliers/dns/workers.py) take what the node's own process exports.
    The node's dependencies are `appliers.node.DEPENDENCIES`."""

    role: str
    waits_for: str
    export: Callable[[ReconcileLoop], Mapping] | None = None
    take: Callable[[ReconcileLoop, Mapping], Mapping] | None = None
    exported: type | None = None  # the value type of `export`'s mapping
