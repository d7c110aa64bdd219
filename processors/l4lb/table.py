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
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from processors.l4lb.allocate import DEFAULT_RANGES, Network, VipName, allocate, blocked_offsets, offset_of, place
from processors.l4lb.contributions import Contribution, contributions_of, family_of
from processors.l4lb.derive import Allocations, vips_of
from processors.l4lb.labels import Rejection, VipRef
from schemas.l4lb import Vip
from schemas.mesos import Agent, Framework, Task

# What one update changed: VIP key -> its new record, or None when it is gone.
Changes = dict[str, Vip | None]


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
        self._by_ref: dict[VipRef, dict[str, list[Contribution]]] = defaultdict(dict)
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
        old = self.tasks.pop(task_id, None)
        if old is not None:
            self._tasks_of_agent[old.agent_id].discard(task_id)
            self._tasks_of_framework[old.framework_id].discard(task_id)
        if task is not None:
            self.tasks[task_id] = task
            self._tasks_of_agent[task.agent_id].add(task_id)
            self._tasks_of_framework[task.framework_id].add(task_id)
        return self._reevaluate({task_id})

    def put_agent(self, agent_id: str, agent: Agent | None) -> Changes:
        self._put(self.agents, agent_id, agent)
        return self._reevaluate(set(self._tasks_of_agent.get(agent_id, ())))

    def put_framework(self, framework_id: str, framework: Framework | None) -> Changes:
        self._put(self.frameworks, framework_id, framework)
        return self._reevaluate(set(self._tasks_of_framework.get(framework_id, ())))

    @staticmethod
    def _put(table: dict, key: str, value) -> None:
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value

    # -- derivation -----------------------------------------------------------------------
    def _reevaluate(self, task_ids: set[str]) -> Changes:
        touched: set[VipRef] = set()
        for task_id in task_ids:
            for contribution in self._contributions.pop(task_id, ()):
                touched.add(contribution.vip)
                self._by_ref[contribution.vip].pop(task_id, None)
            self.rejections.pop(task_id, None)
            task = self.tasks.get(task_id)
            if task is None:
                continue
            found = contributions_of(task, self.agents.get(task.agent_id), self.frameworks.get(task.framework_id))
            if found.rejections:
                self.rejections[task_id] = found.rejections
            self._contributions[task_id] = found.contributions
            for contribution in found.contributions:
                touched.add(contribution.vip)
                self._by_ref[contribution.vip].setdefault(task_id, []).append(contribution)
        for ref in [r for r in touched if not self._by_ref.get(r)]:
            self._by_ref.pop(ref, None)
        touched |= self._reallocate(touched, *self._count(touched))
        return self._rederive(touched)

    def _count(self, touched: set[VipRef]) -> tuple[dict[int, set[VipName]], dict[int, set[VipName]], set[str]]:
        """Update the wanted-name and reserved-address counts for `touched` refs. Returns the
        names each family started and stopped wanting, and the newly reserved addresses."""
        added: dict[int, set[VipName]] = {family: set() for family in self.ranges}
        released: dict[int, set[VipName]] = {family: set() for family in self.ranges}
        reserved: set[str] = set()
        for ref in touched:
            by_task = self._by_ref.get(ref, {})
            if not ref.named:
                was, now = ref in self._families_of_ref, bool(by_task)
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
            after = frozenset(family_of(c.ip) for cs in by_task.values() for c in cs)
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

    def _reallocate(self, touched: set[VipRef], added: dict[int, set[VipName]], released: dict[int, set[VipName]],
                    reserved: set[str]) -> set[VipRef]:
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
                moved |= {ref for ref in self._by_ref if ref.named and (ref.address, ref.framework) == name}
            self.allocations[family] = current = updated
        self._taken[family] = {o for ip in current.values() if (o := offset_of(ip, network)) is not None}
        self._unplaced[family] = wanted - set(current)
        return moved

    def _rederive(self, refs: set[VipRef]) -> Changes:
        changes: Changes = {}
        for ref in sorted(refs):
            old_keys = self._keys_of_ref.pop(ref, set())
            by_task = self._by_ref.get(ref, {})
            records = vips_of(ref, [c for cs in by_task.values() for c in cs], self.allocations) if by_task else {}
            for key in old_keys - records.keys():
                if self.records.pop(key, None) is not None:
                    changes[key] = None
            for key, vip in records.items():
                if self.records.get(key) != vip:
                    self.records[key] = vip
                    changes[key] = vip
            if records:
                self._keys_of_ref[ref] = set(records)
        return changes
