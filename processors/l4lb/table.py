"""The VIP table kept up to date one entity at a time (pure): what the stream processor runs.

``derive_vips`` recomputes everything from a snapshot; a processor fed one record at a time
cannot afford that per change. ``VipTable`` keeps each task's contributions indexed by the
VIP they feed, so a change re-derives only the VIPs it touches, with the same functions
(``contributions_of``, ``vips_of``, ``allocate``). Allocation runs only when the set of named
VIPs of an address family changes, and always keeps the addresses already handed out.

What a change costs must not grow with the table (10,000 VIPs load as 30,000 task records, and
churn must stay in milliseconds): the wanted names per family and the reserved IP-VIP
addresses are counted as refs come and go, and a new name is placed next to the addresses
already taken (``place``) instead of re-running ``allocate`` over every name. ``allocate``
runs whole only the first time a family is allocated (the addresses of a previous run are
its input) and when an IP VIP claims an address a name holds (that name moves).

Nor may it grow with the VIP: each VIP keeps its backends per address family in published
order (backends.py), so a task joining a VIP of 1,000 backends inserts one backend, and the
record is rebuilt from that list once per batch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from processors.l4lb.allocate import DEFAULT_RANGES, Network, VipName, allocate, blocked_offsets, offset_of, place
from processors.l4lb.backends import VipBackends
from processors.l4lb.contributions import Contribution, contributions_of, family_of
from processors.l4lb.derive import Allocations, vip_key
from processors.l4lb.labels import Rejection, VipRef
from processors.l4lb.names import vip_dns_name
from schemas.l4lb import Vip
from schemas.mesos import Agent, Framework, Task

# What one update changed: VIP key -> its new record, or None when it is gone.
Changes = dict[str, Vip | None]
# Output key -> the index (in its batch) of the newest update that changed it.
Causes = dict[str, int]
KINDS = ("task", "agent", "framework")


class VipTable:
    def __init__(self, allocations: Mapping[int, Mapping[VipName, str]] | None = None,
                 ranges: Mapping[int, Network] = DEFAULT_RANGES):
        self.ranges = ranges
        self.allocations: Allocations = {family: dict((allocations or {}).get(family, {})) for family in ranges}
        self.tasks: dict[str, Task] = {}
        self.agents: dict[str, Agent] = {}
        self.frameworks: dict[str, Framework] = {}
        self.records: dict[str, Vip] = {}
        self.rejections: dict[str, tuple[Rejection, ...]] = {}  # by task id
        self._contributions: dict[str, tuple[Contribution, ...]] = {}  # by task id
        self._backends: dict[VipRef, dict[int, VipBackends]] = {}  # by VIP, then address family
        self._keys_of_ref: dict[VipRef, set[str]] = {}
        self._tasks_of_agent: dict[str, set[str]] = defaultdict(set)
        self._tasks_of_framework: dict[str, set[str]] = defaultdict(set)
        # Incremental bookkeeping for allocation (see the module docstring).
        self._families_of_ref: dict[VipRef, frozenset[int]] = {}  # named refs with contributions
        self._wanted_count: dict[int, dict[VipName, int]] = {family: {} for family in ranges}
        self._reserved_count: dict[str, int] = {}  # IP VIP address -> refs with contributions
        self._taken: dict[int, set[int]] = {}  # family -> offsets of its allocations, once synced
        self._unplaced: dict[int, set[VipName]] = {family: set() for family in ranges}  # range full

    # -- inputs ---------------------------------------------------------------------------
    def put_task(self, task_id: str, task: Task | None) -> Changes:
        return self.put_many([("task", task_id, task)])

    def put_agent(self, agent_id: str, agent: Agent | None) -> Changes:
        return self.put_many([("agent", agent_id, agent)])

    def put_framework(self, framework_id: str, framework: Framework | None) -> Changes:
        return self.put_many([("framework", framework_id, framework)])

    def put_many(self, updates: Iterable[tuple[str, str, object]]) -> Changes:
        """Apply ``(kind, key, entity or None)`` updates, kind one of ``KINDS``; one Changes for all."""
        return self.apply_batch(updates)[0]

    def apply_batch(self, updates: Iterable[tuple[str, str, object]]) -> tuple[Changes, Causes]:
        """``put_many``, and for each changed key the index of the newest update behind it.

        Every task the batch touches is re-evaluated once, and every VIP it touches rebuilt once.
        """
        causes: dict[str, int] = {}  # task id -> index of the newest update that touched it
        for index, (kind, key, value) in enumerate(updates):
            for task_id in self._store(kind, key, value):
                causes[task_id] = index
        return self._reevaluate(causes)

    def _store(self, kind: str, key: str, value) -> Iterable[str]:
        """Store one entity; return the tasks whose contributions may have changed."""
        if kind == "task":
            old = self.tasks.pop(key, None)
            if old is not None:
                self._tasks_of_agent[old.agent_id].discard(key)
                self._tasks_of_framework[old.framework_id].discard(key)
            if value is not None:
                self.tasks[key] = value
                self._tasks_of_agent[value.agent_id].add(key)
                self._tasks_of_framework[value.framework_id].add(key)
            return (key,)
        if kind == "agent":
            _put(self.agents, key, value)
            return list(self._tasks_of_agent.get(key, ()))
        if kind == "framework":
            _put(self.frameworks, key, value)
            return list(self._tasks_of_framework.get(key, ()))
        raise ValueError(f"unknown entity kind {kind!r}; expected one of {', '.join(KINDS)}")

    # -- derivation -----------------------------------------------------------------------
    def _reevaluate(self, causes: dict[str, int]) -> tuple[Changes, Causes]:
        touched: dict[VipRef, int] = {}
        for task_id, cause in causes.items():
            for contribution in self._contributions.pop(task_id, ()):
                touched[contribution.vip] = max(cause, touched.get(contribution.vip, cause))
                self._group(contribution).remove(contribution)
            self.rejections.pop(task_id, None)
            task = self.tasks.get(task_id)
            if task is None:
                continue
            found = contributions_of(task, self.agents.get(task.agent_id), self.frameworks.get(task.framework_id))
            if found.rejections:
                self.rejections[task_id] = found.rejections
            if found.contributions:
                self._contributions[task_id] = found.contributions
            for contribution in found.contributions:
                touched[contribution.vip] = max(cause, touched.get(contribution.vip, cause))
                self._group(contribution).add(contribution)
        for ref in touched:
            groups = self._backends.get(ref)
            if groups is not None:
                for family in [f for f, group in groups.items() if not group]:
                    del groups[family]
                if not groups:
                    del self._backends[ref]
        moved = self._reallocate(touched.keys(), *self._count(touched.keys()))
        newest = max(causes.values(), default=0)
        for ref in moved:
            touched[ref] = newest
        return self._rederive(touched)

    def _group(self, contribution: Contribution) -> VipBackends:
        groups = self._backends.get(contribution.vip)
        if groups is None:
            groups = self._backends[contribution.vip] = {}
        family = family_of(contribution.ip)
        group = groups.get(family)
        if group is None:
            group = groups[family] = VipBackends()
        return group

    def _count(self, touched: Iterable[VipRef]) -> tuple[dict[int, set[VipName]], dict[int, set[VipName]], set[str]]:
        """Update the wanted-name and reserved-address counts for `touched` refs. Returns the
        names each family started and stopped wanting, and the newly reserved addresses."""
        added: dict[int, set[VipName]] = {family: set() for family in self.ranges}
        released: dict[int, set[VipName]] = {family: set() for family in self.ranges}
        reserved: set[str] = set()
        for ref in touched:
            groups = self._backends.get(ref, {})
            if not ref.named:
                was, now = ref in self._families_of_ref, bool(groups)
                if was != now:
                    count = self._reserved_count.get(ref.address, 0) + (1 if now else -1)
                    if now and count == 1:
                        reserved.add(ref.address)
                    if count:
                        self._reserved_count[ref.address] = count
                    else:
                        self._reserved_count.pop(ref.address, None)
                if now:
                    self._families_of_ref[ref] = frozenset()
                else:
                    self._families_of_ref.pop(ref, None)
                continue
            name = (ref.address, ref.framework)
            before = self._families_of_ref.pop(ref, frozenset())
            after = frozenset(groups)
            if after:
                self._families_of_ref[ref] = after
            for family in before - after:
                counts = self._wanted_count.setdefault(family, {})
                counts[name] -= 1
                if not counts[name]:
                    del counts[name]
                    released.setdefault(family, set()).add(name)
            for family in after - before:
                counts = self._wanted_count.setdefault(family, {})
                counts[name] = counts.get(name, 0) + 1
                if counts[name] == 1:
                    added.setdefault(family, set()).add(name)
        return added, released, reserved

    def _reallocate(self, touched: Iterable[VipRef], added: dict[int, set[VipName]],
                    released: dict[int, set[VipName]], reserved: set[str]) -> set[VipRef]:
        """Allocate or release named VIP addresses when the set of named VIPs changed.

        Returns the refs whose address moved (only possible when an IP VIP claims an address).
        """
        if not any(ref.named or ref.address for ref in touched):
            return set()
        moved: set[VipRef] = set()
        for family, network in sorted(self.ranges.items()):
            current = self.allocations.setdefault(family, {})
            taken = self._taken.get(family)
            claimed = taken is not None and any(
                (offset := offset_of(ip, network)) is not None and offset in taken for ip in reserved)
            if taken is None or claimed:
                moved |= self._allocate_whole(family, network)
                continue
            for name in released.get(family, ()):
                ip = current.pop(name, None)
                if ip is not None:
                    taken.discard(offset_of(ip, network))
                self._unplaced[family].discard(name)
            new = {name for name in added.get(family, set()) | self._unplaced[family] if name not in current}
            if new:  # (unplaced names retry: a release may have freed an address)
                placed = place(new, taken, blocked_offsets(self._reserved_count.keys(), network), network)
                current.update(placed)
                self._unplaced[family] = new - placed.keys()
        return moved

    def _allocate_whole(self, family: int, network: Network) -> set[VipRef]:
        """`allocate` over every wanted name of the family: the first time (the previous run's
        addresses are the input) and when an IP VIP claims an allocated address."""
        wanted, reserved = set(self._wanted_count.get(family, {})), set(self._reserved_count)
        current = self.allocations.get(family, {})
        moved: set[VipRef] = set()
        if wanted != set(current) or reserved & set(current.values()):
            updated = allocate(wanted, current, network, reserved)
            for name in {n for n in updated if current.get(n) != updated[n]} & set(current):
                moved |= {ref for ref in self._backends if ref.named and (ref.address, ref.framework) == name}
            self.allocations[family] = current = updated
        self._taken[family] = {o for ip in current.values() if (o := offset_of(ip, network)) is not None}
        self._unplaced[family] = wanted - set(current)
        return moved

    def _rederive(self, refs: Mapping[VipRef, int]) -> tuple[Changes, Causes]:
        changes: Changes = {}
        causes: Causes = {}
        for ref in sorted(refs):
            old_keys = self._keys_of_ref.pop(ref, set())
            records = self._records_of(ref)
            for key in old_keys - records.keys():
                if self.records.pop(key, None) is not None:
                    changes[key] = None
                    causes[key] = refs[ref]
            for key, vip in records.items():
                if self.records.get(key) != vip:
                    self.records[key] = vip
                    changes[key] = vip
                    causes[key] = refs[ref]
            if records:
                self._keys_of_ref[ref] = set(records)
        return changes, causes

    def _records_of(self, ref: VipRef) -> dict[str, Vip]:
        """What ``derive.vips_of`` makes of the ref's contributions, from the kept backends."""
        groups = self._backends.get(ref)
        if not groups:
            return {}
        if not ref.named:
            group = groups.get(family_of(ref.address))
            if not group:
                return {}
            return {vip_key(ref.protocol, ref.address, ref.port): Vip(ref.protocol, ref.address, ref.port,
                                                                       list(group.backends))}
        records = {}
        dns = vip_dns_name(ref.address, ref.framework)
        for family in sorted(groups):
            ip = self.allocations.get(family, {}).get((ref.address, ref.framework))
            if ip is not None:
                records[vip_key(ref.protocol, ip, ref.port)] = Vip(
                    ref.protocol, ip, ref.port, list(groups[family].backends), name=ref.address,
                    framework=ref.framework, dns=dns)
        return records


def _put(table: dict, key: str, value) -> None:
    if value is None:
        table.pop(key, None)
    else:
        table[key] = value
