"""The DNS table kept up to date one entity at a time (pure): what the stream processor runs.

Many entities feed one record set (``web.marathon.mesos.`` holds every instance's address,
``slave.mesos.`` every agent's), so each record set keeps what every entity contributed to it,
by entity: a set is the union of its contributions and disappears with the last one. An
update re-derives only the entities it touches, with the functions of derive.py:

- a task: that task;
- an agent: the agent and the tasks on it (indexed by agent id);
- a framework: the framework and its tasks (indexed by framework id);
- the cluster: the cluster records;
- an agent's overlay leases (kind ``leases``, no value: the table reads them through its
  ``OverlayLeases`` view when it derives): the tasks on that agent.

The entity's old contributions are taken back, the new ones added, and only the record sets
whose value changed are returned (``None`` when the name/type has no record left). Applying
the same updates in any order ends in the table ``derive_records`` computes from scratch.

``put_many`` applies a batch and builds each touched record set once, which is what a
replay or a rebuild should use: one big set is then sorted once, not once per task.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterable
from contextlib import contextmanager

from processors.indexes import unindex
from processors.dns.collect import EntityRecords, Rejection
from processors.dns.config import DnsConfig
from processors.dns.leases import OverlayLeases
from processors.dns.derive import (
    agent_records,
    cluster_records,
    framework_records,
    task_records,
)
from processors.dns.sets import copy_of, record_set, sorted_record_set
from processors.dns.shared import Share, SharedSet
from schemas.dns import RecordSet
from schemas.mesos import Agent, Cluster, Framework, Task

# What one update changed: record-set key -> its new value, or None when it is gone.
Changes = dict[str, RecordSet | None]
# Record-set key -> the index (in its batch) of the newest update that changed it.
Causes = dict[str, int]
KINDS = ("task", "agent", "framework", "cluster", "leases")
Source = tuple[str, str]  # (kind, key)


BULK = 1000  # entities re-derived in one batch from which the cyclic GC is paused


@contextmanager
def _collector_paused(pause: bool):
    """Pause Python's cyclic garbage collector for a bulk batch, then restore it.

    A rebuild allocates millions of long-lived tuples, dicts and record sets and creates no
    reference cycles; left running, the collector rescans the growing heap again and again
    and takes a third of the rebuild's time (measured: 100,000 tasks). Nothing is freed
    later than it would be: the objects are all still referenced when the batch ends.
    """
    if not pause or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class DnsTable:
    """The DNS table of the current Mesos tables, updated one entity (or one batch) at a time.

    - ``put_task/put_agent/put_framework/put_cluster(key, value or None)`` and
      ``put_many([(kind, key, value or None), ...])`` return the changed record sets by key
      (``<name>/<type>``), ``None`` for a name/type left without records;
    - ``records``: every record set now; ``rejections``: what each entity could not publish,
      by ``(kind, key)``; ``take_rejections()``: the refusals that are new since the last call.
    """

    def __init__(self, config: DnsConfig | None = None, leases: OverlayLeases | None = None):
        self.config = config or DnsConfig()
        self.leases = leases  # None: container addresses are not checked against overlay leases
        self.tasks: dict[str, Task] = {}
        self.agents: dict[str, Agent] = {}
        self.frameworks: dict[str, Framework] = {}
        self.clusters: dict[str, Cluster] = {}
        self.records: dict[str, RecordSet] = {}
        self.rejections: dict[Source, tuple[Rejection, ...]] = {}
        self._new_rejections: list[Rejection] = []
        self._shares: dict[str, dict[Source, Share]] = {}
        # The counted union of each set several entities feed, built at its first commit and
        # kept up to date from then on.
        self._shared: dict[str, SharedSet] = {}
        self._derived: dict[Source, EntityRecords] = {}
        self._tasks_of_agent: dict[str, set[str]] = defaultdict(set)
        self._tasks_of_framework: dict[str, set[str]] = defaultdict(set)

    # -- inputs ---------------------------------------------------------------------------
    def put_task(self, key: str, task: Task | None) -> Changes:
        return self.put_many([("task", key, task)])

    def put_agent(self, key: str, agent: Agent | None) -> Changes:
        return self.put_many([("agent", key, agent)])

    def put_framework(self, key: str, framework: Framework | None) -> Changes:
        return self.put_many([("framework", key, framework)])

    def put_cluster(self, key: str, cluster: Cluster | None) -> Changes:
        return self.put_many([("cluster", key, cluster)])

    def put_leases(self, agent_id: str) -> Changes:
        """The agent's overlay leases changed: its tasks are derived again."""
        return self.put_many([("leases", agent_id, None)])

    def put_many(self, updates: Iterable[tuple[str, str, object]]) -> Changes:
        """Apply ``(kind, key, value or None)`` updates, kind one of ``KINDS``; one Changes for all.

        A batch re-derives each touched entity once and builds each touched record set once.
        """
        return self.apply_batch(updates)[0]

    def apply_batch(self, updates: Iterable[tuple[str, str, object]]) -> tuple[Changes, Causes]:
        """``put_many``, and for each changed key the index of the newest update behind it."""
        stale: dict[Source, int] = {}
        for index, (kind, key, value) in enumerate(updates):
            for source in self._store(kind, key, value):
                stale[source] = index
        with _collector_paused(len(stale) >= BULK):
            dirty: dict[str, int] = {}
            for source, cause in stale.items():
                self._rederive(source, dirty, cause)
            return self._commit(dirty)

    def take_rejections(self) -> list[Rejection]:
        """The rejections raised since the last call (each new refusal once), for publishing."""
        taken, self._new_rejections = self._new_rejections, []
        return sorted(taken)

    # -- bookkeeping ----------------------------------------------------------------------
    def _store(self, kind: str, key: str, value: object) -> set[Source]:
        """Store one entity; return the sources whose records may have changed."""
        if kind == "leases":
            return {("task", task_id) for task_id in self._tasks_of_agent.get(key, ())}
        if kind == "task":
            old = self.tasks.get(key)
            if old == value:
                return set()
            if old is not None:
                unindex(self._tasks_of_agent, old.agent_id, key)
                unindex(self._tasks_of_framework, old.framework_id, key)
            if value is None:
                self.tasks.pop(key, None)
            else:
                self.tasks[key] = value
                self._tasks_of_agent[value.agent_id].add(key)
                self._tasks_of_framework[value.framework_id].add(key)
            return {("task", key)}
        table, index = {
            "agent": (self.agents, self._tasks_of_agent),
            "framework": (self.frameworks, self._tasks_of_framework),
            "cluster": (self.clusters, None),
        }.get(kind, (None, None))
        if table is None:
            raise ValueError(f"unknown entity kind {kind!r}; expected one of {', '.join(KINDS)}")
        if table.get(key) == value:
            return set()
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
        dependants = {("task", task_id) for task_id in index.get(key, ())} if index is not None else set()
        return {(kind, key)} | dependants

    def _derive(self, source: Source) -> EntityRecords | None:
        kind, key = source
        if kind == "task":
            task = self.tasks.get(key)
            if task is None:
                return None
            return task_records(
                task, self.agents.get(task.agent_id), self.frameworks.get(task.framework_id), self.config, self.leases
            )
        if kind == "agent":
            agent = self.agents.get(key)
            return agent_records(agent, self.config) if agent is not None else None
        if kind == "framework":
            framework = self.frameworks.get(key)
            return framework_records(framework, self.config) if framework is not None else None
        cluster = self.clusters.get(key)
        return cluster_records(cluster, self.config) if cluster is not None else None

    def _rederive(self, source: Source, dirty: dict[str, int], cause: int) -> None:
        old = self._derived.pop(source, None)
        new = self._derive(source)
        if old is not None and new is not None and old == new:
            self._derived[source] = new
            return
        if old is not None:
            self._apply(source, old, dirty, cause, adding=False)
        self.rejections.pop(source, None)
        if new is None:
            return
        self._derived[source] = new
        self._apply(source, new, dirty, cause, adding=True)
        if new.rejections:
            before = set(old.rejections) if old is not None else set()
            self._new_rejections.extend(r for r in new.rejections if r not in before)
            self.rejections[source] = new.rejections

    def _apply(self, source: Source, found: EntityRecords, dirty: dict[str, int], cause: int, adding: bool) -> None:
        """Add or take back one entity's share of each record set it feeds."""
        shares = self._shares
        share_of = (found.task, found.framework)
        for key, values in found.contributions:
            if dirty.get(key, -1) < cause:
                dirty[key] = cause
            by_source = shares.get(key)
            if adding:
                share = (values, *share_of)
                if by_source is None:
                    shares[key] = {source: share}
                    continue
                by_source[source] = share
                shared = self._shared.get(key)
                if shared is not None:
                    shared.add(*share)
                # else: a second share (or an unbuilt set): built from every share at the commit
            else:
                del by_source[source]
                if len(by_source) > 1:
                    if (shared := self._shared.get(key)) is not None:
                        shared.remove(values, *share_of)
                else:
                    self._shared.pop(key, None)
                    if not by_source:
                        del shares[key]

    def _commit(self, dirty: dict[str, int]) -> tuple[Changes, Causes]:
        """Rebuild the touched record sets (and their copies); keep only real changes."""
        changes: Changes = {}
        causes: Causes = {}
        for key, cause in dirty.items():
            found: Changes = {}
            self._rebuild_set(key, found)
            for changed in found:
                causes[changed] = cause
            changes.update(found)
        return changes, causes

    def _rebuild_set(self, key: str, changes: Changes) -> None:
        """One record set (and its copy) from what every entity contributes to it now."""
        by_source = self._shares.get(key)
        if by_source is None:
            self._drop(key, changes)
            return
        if len(by_source) == 1:
            ((rdata, task, framework),) = by_source.values()
            value = record_set(key, rdata, (task,) if task else (), (framework,) if framework else (), self.config)
        else:
            shared = self._shared.get(key)
            if shared is None:
                shared = self._shared[key] = SharedSet.of(by_source.values())
            value = sorted_record_set(key, list(shared.rdata), list(shared.tasks), shared.framework(), self.config)
        if self.records.get(key) == value:
            return
        self.records[key] = value
        changes[key] = value
        copy = copy_of(value, self.config) if self.config.mesos_copy else None
        if copy is not None:
            copy_key, copied = copy
            if copied is None:
                self._drop(copy_key, changes)
            elif self.records.get(copy_key) != copied:
                self.records[copy_key] = copied
                changes[copy_key] = copied

    def _drop(self, key: str, changes: Changes) -> None:
        """Remove a record set, and its copy, and say so."""
        old = self.records.pop(key, None)
        if old is None:
            return
        changes[key] = None
        copy = copy_of(old, self.config) if self.config.mesos_copy else None
        if copy is not None and self.records.pop(copy[0], None) is not None:
            changes[copy[0]] = None
