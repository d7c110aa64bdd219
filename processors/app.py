"""`wayfinder process`: derives the `vips`, `dns` and `haproxy` tables from the source topics,
as the one active processor of its namespace or as a warm standby.

Any number may run. Each one
- follows every partition of every source topic itself (assigned, no consumer group), from
  offset 0, in batches, and keeps its stages' pure tables current in memory; it follows the
  `status` topic too, for the producers' readiness marks;
- joins the election (runtime/kafka/election.py): the member of group `<namespace>.processor`
  that holds the `status` topic's one partition is the active processor;
- when elected, fences every older active through a transactional producer with the stable
  id `<namespace>.processor`, then publishes from its tables (processors/active.py). A standby
  is therefore as current as the active, and a takeover costs the fencing, one read of the
  output topics and the difference.

This processor no longer runs faust agents: faust consumes through a consumer group, and a
group splits the source partitions between processors, which is exactly what a second
processor must not do (each would see a part of the tasks, and derive wrong tables from it).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from processors.active import Publisher, State
from processors.dns.config import DnsConfig
from processors.overlay.config import OverlayConfig
from processors.readiness import producers_by_output, reaches
from processors.replay import processor_stages
from processors.stage import SourceRecord, Stage, Update, decode_batch
from runtime.blocking import run_until_stopped
from runtime.logs import log_context
from runtime.memory import release_free_memory
from runtime.metrics import PROCESSOR_CONSUMED, PROCESSOR_LAG
from runtime.kafka.election import Election, ElectionFailed
from runtime.kafka.reader import ConsumedRecord, Halted, PartitionsFollower, read_table
from runtime.kafka.status import decode_mark
from runtime.kafka.topics import ensure_topics_until
from schemas.catalog import Catalog
from schemas.headers import Observation, RecordMeta
from schemas.rejections import Rejection
from schemas.status import PROCESSOR_KEY, Mark, Positions, instance_name

log = logging.getLogger(__name__)

DEFAULT_SESSION_TIMEOUT_MS = 6000  # the lowest a stock broker accepts (group.min.session.timeout.ms)
BATCH_RECORDS = 5000
BATCH_LINGER_S = 0.001  # after a batch's first record, how long to wait for more (a commit takes longer, and what arrives meanwhile makes the next batch)
IDLE_POLL_S = 0.05  # also how soon a change of role is noticed
HELD_REJECTIONS = 10_000
TICK_S = 1.0  # how often the stages see time pass (overlay leases freed after their grace)
LAG_EVERY_S = 1.0  # how often the lag gauges are brought up to date (no broker request: cheap)


class Processor:
    def __init__(self, bootstrap: str, catalog: Catalog, dns: DnsConfig | None = None,
                 session_timeout_ms: int = DEFAULT_SESSION_TIMEOUT_MS, overlay: OverlayConfig | None = None):
        self.bootstrap = bootstrap
        self.catalog = catalog
        self.session_timeout_ms = session_timeout_ms
        self.stages: list[Stage] = processor_stages(catalog, dns, overlay)
        self._next_tick = 0.0  # monotonic
        self._next_lag = 0.0  # monotonic
        self.instance = instance_name()
        aliases = list(dict.fromkeys(alias for stage in self.stages for alias in stage.sources))
        self._sources = {alias: source for stage in self.stages for alias, source in stage.sources.items()}
        assert all(self._sources[alias].entity is source.entity
                   for stage in self.stages for alias, source in stage.sources.items()), "one entity type per source"
        self._alias_of = {catalog.topic(alias).name: alias for alias in aliases}
        self._status_topic = catalog.topic("status").name
        self.marks: dict[str, Mark] = {}
        self._undecodable: list[Rejection] = []  # source records that match no schema, not yet handed on
        self.follower: PartitionsFollower | None = None
        self.election: Election | None = None
        # Readiness is per output: a cluster without Marathon gets vips and dns, not haproxy.
        producers = producers_by_output(catalog, {stage.output: stage.sources for stage in self.stages})
        self.publisher = Publisher(bootstrap, catalog, self.stages, producers, self.instance,
                                   time.time(), session_timeout_ms / 1000)
        # Rejections found while standing by, each with the source positions of its batch: a
        # takeover publishes those the previous active's last mark does not cover.
        self._held: deque[tuple[Positions, Rejection]] = deque(maxlen=HELD_REJECTIONS)

    async def run(self, stop: asyncio.Event, started: asyncio.Event | None = None) -> None:
        """Until `stop`; `started` is set once the tables are rebuilt and the election joined."""
        loop = asyncio.get_running_loop()
        with log_context(instance=self.instance):  # the work thread copies it (asyncio.to_thread)
            if not await ensure_topics_until(self.bootstrap, self.catalog, stop, role="processor"):
                return
            await run_until_stopped(stop, lambda halt: self._work(
                halt, lambda: started and loop.call_soon_threadsafe(started.set)))

    # -- the work thread ------------------------------------------------------------------
    def _work(self, halt: threading.Event, started: Callable[[], None]) -> None:
        try:
            self.follower = PartitionsFollower(self.bootstrap, [*self._alias_of, self._status_topic], halt=halt)
        except Halted:
            return  # stopped while a source topic did not exist yet
        try:
            self._rebuild()
            # The rebuilt tables live as long as the processor: keep later full collections from
            # walking their millions of objects again, a pause that would land on some batch.
            gc.collect()
            gc.freeze()
            release_free_memory()  # the records read for the rebuild are gone
            self.election = Election(self.bootstrap, self.catalog.processor_group, self._status_topic,
                                     self.session_timeout_ms, member=self.instance)
            self.election.start()
            started()
            try:
                self._follow(halt)
            finally:
                self.publisher.step_down("stopping", expected=True)
                self.election.close()  # leaves the group: a standby takes over at once
        finally:
            self.follower.close()

    def _rebuild(self) -> None:
        """Every source read to the end it had at the start, applied as one batch per stage."""
        started = time.monotonic()
        ends = self.follower.end_offsets()
        for stage in self.stages:
            stage.start(read_table(self.bootstrap, self.catalog.topic(stage.output).name))
        latest: dict[tuple[str, str], SourceRecord] = {}
        while not self.follower.reached(ends):
            for record in self.follower.poll(100_000, 0.2):
                if (alias := self._source_of(record)) is not None:
                    latest[(alias, record.key or "")] = _source_record(alias, record)
        updates = self._decoded(_by_alias(latest))
        del latest
        for stage in self.stages:
            stage.apply_updates(updates)
            stage.pending.clear()  # a takeover publishes every difference anyway
        self._hold(self._take_rejections())
        log.info("processor %s rebuilt in %.2fs: %s", self.instance, time.monotonic() - started,
                 ", ".join(f"{stage.name} {len(stage.table.records)} records" for stage in self.stages))

    def _follow(self, halt: threading.Event) -> None:
        while not halt.is_set():
            records = self.follower.poll(BATCH_RECORDS, IDLE_POLL_S, BATCH_LINGER_S)
            self._measure(records)
            batch = self._batch_of(records)
            updates = self._decoded(batch)
            for stage in self.stages:
                stage.apply_updates(updates)
            changed = self._tick() or bool(batch)
            rejections = self._take_rejections()
            if self.election.failure:
                raise ElectionFailed(f"this processor cannot be elected: {self.election.failure}")
            leading, term = self.election.leading.is_set(), self.election.term
            if not leading and self.publisher.active:
                self.publisher.step_down("the election moved the role")
            if leading and not self.publisher.active and self.publisher.may_take_over(term):
                self._hold(rejections)
                rejections = []
                self.publisher.take_over(term, self._state, self._unreported(), self.election.leading.is_set)
                release_free_memory()  # the output topics read for the comparison are gone
                continue
            if self.publisher.active:
                self.publisher.publish(term, self._state(), rejections, changed)
            else:
                self._hold(rejections)

    def _measure(self, records: list[ConsumedRecord]) -> None:
        """Records read per source topic, and about every LAG_EVERY_S the lag of each."""
        if records:
            read: dict[str, int] = {}
            for record in records:
                read[record.topic] = read.get(record.topic, 0) + 1
            for topic, count in read.items():
                if topic in self._alias_of:
                    PROCESSOR_CONSUMED.labels(topic).inc(count)
        now = time.monotonic()
        if now >= self._next_lag:
            self._next_lag = now + LAG_EVERY_S
            for topic in self._alias_of:
                PROCESSOR_LAG.labels(topic).set(self.follower.lag((topic,)))

    # -- records --------------------------------------------------------------------------
    def _source_of(self, record: ConsumedRecord) -> str | None:
        """The record's source alias; a status record updates the marks instead (None)."""
        alias = self._alias_of.get(record.topic)
        if alias is None and record.key is not None:
            if record.value is None:
                self.marks.pop(record.key, None)
            elif (mark := decode_mark(record.key, record.value)) is not None:
                self.marks[record.key] = mark
        return alias

    def _batch_of(self, records: list[ConsumedRecord]) -> dict[str, list[SourceRecord]]:
        """The newest record of each source key, by alias."""
        latest: dict[tuple[str, str], SourceRecord] = {}
        for record in records:
            if (alias := self._source_of(record)) is not None:
                latest[(alias, record.key or "")] = _source_record(alias, record)
        return _by_alias(latest)

    def _decoded(self, batch: dict[str, list[SourceRecord]]) -> dict[str, list[Update]]:
        """The batch decoded once for every stage; what does not decode is rejected once."""
        updates, rejections = decode_batch(self._sources, batch, "processor")
        self._undecodable.extend(rejections)
        return updates

    def _tick(self) -> bool:
        """About every ``TICK_S``, the stages see time pass; whether any output is pending since."""
        now = time.monotonic()
        if now < self._next_tick:
            return False
        self._next_tick = now + TICK_S
        for stage in self.stages:
            stage.tick(time.time())
        return any(stage.pending for stage in self.stages)

    def _state(self) -> State:
        positions = {alias: dict(self.follower.positions[topic]) for topic, alias in self._alias_of.items()}
        # Sources only: the status topic always trails by the marks this processor just wrote.
        lag = self.follower.lag(self._alias_of)
        return positions, lag, dict(self.marks)

    # -- rejections -----------------------------------------------------------------------
    def _take_rejections(self) -> list[Rejection]:
        taken, self._undecodable = self._undecodable, []
        return taken + [rejection for stage in self.stages for rejection in stage.take_rejections()]

    def _hold(self, rejections: list[Rejection]) -> None:
        if rejections:
            positions = self._state()[0]
            self._held.extend((positions, rejection) for rejection in rejections)

    def _unreported(self) -> list[Rejection]:
        """The held rejections the previous active's last mark does not cover."""
        previous = self.marks.get(PROCESSOR_KEY)
        covered = previous.positions if previous is not None else {}
        found = [rejection for positions, rejection in self._held if not reaches(covered, positions)]
        self._held.clear()
        return found


def _by_alias(latest: dict[tuple[str, str], SourceRecord]) -> dict[str, list[SourceRecord]]:
    """The newest record of each (alias, key), grouped by alias: one batch for the stages."""
    batch: dict[str, list[SourceRecord]] = {}
    for (alias, _), record in latest.items():
        batch.setdefault(alias, []).append(record)
    return batch


def _source_record(alias: str, record: ConsumedRecord) -> SourceRecord:
    meta = RecordMeta.from_headers(record.headers)
    obs = Observation(meta.trace, meta.observed_ns) if meta else Observation.now()
    return SourceRecord(alias, record.key or "", record.value, obs)
