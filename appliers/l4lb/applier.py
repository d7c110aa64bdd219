"""The L4 reconcile object: desired VIPs in, one atomic nft transaction per sync out.

kube-proxy's shape: `update` (changed topic keys) and `set_desired` (a whole table) only
record which VIPs changed; `sync` (called by the coalescing loop) plans and applies; `resync`
forces a full read-back so drift (an element deleted by hand) is repaired.

Why `sync` does not read the kernel every time: listing a 10k-VIP table costs ~1.3 s
(terse + JSON listing + parse) against ~0.3 ms for the change itself (bench/l4lb_apply.py).
So the applier keeps the state it read back, advanced by each committed plan
(`Plan.after`, exactly what the atomic transaction produced), and reads the kernel again at
start, after any failure, and on every `resync`. For the same reason a steady-state sync plans
only the VIPs that changed (planning all 10k costs ~66 ms, one VIP ~0.1 ms).
`programmed()` always reads the kernel.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Mapping

from appliers.l4lb.kernel import Kernel, NftError
from appliers.l4lb.desired import DesiredVips
from appliers.l4lb.model import KernelVip, TableState, VipKey, family_of, schema_key
from appliers.l4lb.plan import Flush, Plan, advance, covered, plan, plan_changes, plan_routes
from schemas.l4lb import Backend, Vip

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApplyRecord:
    """One sync, for metrics and bench/l4lb_apply.py. Durations in seconds."""

    at: float  # wall-clock time the sync finished
    ok: bool
    rebuilt: tuple[str, ...]  # families whose table was replaced whole
    changed: int
    removed: int
    flushed: int | None  # UDP conntrack entries deleted; None: flushing failed
    text_bytes: int  # size of the nft transaction
    read_s: float  # kernel read-back (0 when the kept state was used)
    plan_s: float
    apply_s: float  # the nft transaction alone
    total_s: float
    error: str | None = None
    partial: bool = False  # planned only the changed VIPs (plan_changes), not the whole table


@dataclass(frozen=True)
class Prepared:
    """A planned sync, waiting for `commit`: the plan and what it was planned from."""

    plan: Plan
    full: bool  # planned every VIP (else only `keys`)
    keys: set[VipKey]
    initialized: bool
    desired: dict[VipKey, KernelVip]
    names: dict[VipKey, str]
    started: float  # perf_counter when the sync began
    read_s: float
    plan_s: float

    @property
    def converged(self) -> bool:
        return self.plan.converged


class L4Applier:
    def __init__(
        self,
        kernel: Kernel,
        *,
        route_dev: str | None = None,
        vip_ranges: tuple[str, ...] = (),
        clock: Callable[[], float] = time.time,
        history: int = 256,
        on_apply: Callable[[ApplyRecord], None] | None = None,
    ) -> None:
        self.kernel = kernel
        self.route_dev = route_dev  # None: do not manage routes for the node itself
        self.vip_ranges = vip_ranges
        self.clock = clock
        self.on_apply = on_apply
        self.history: deque[ApplyRecord] = deque(maxlen=history)
        self.applied_at: dict[str, float] = {}  # topic key -> when the kernel got it as desired
        self.initialized = False
        self._desired = DesiredVips()
        self._pending: set[VipKey] = set()  # kernel keys changed since the last sync
        self._full = True  # the next sync plans the whole table (see sync)
        self._actual: dict[str, TableState] | None = None  # None: read the kernel next sync
        self._last_desired: dict[VipKey, KernelVip] = {}  # as of the last successful sync
        self._stamped: dict[VipKey, str] = {}  # live kernel key -> its topic key in applied_at
        self._read_s: float | None = None  # the last kernel read-back, not yet planned from
        self._lock = threading.Lock()

    @property
    def dirty(self) -> bool:
        return bool(self._pending) or self._full or self._actual is None

    def programmed_counts(self) -> tuple[int, int]:
        """(VIPs, backends) in the kernel as of the last successful sync, for the metrics."""
        vips = list(self._last_desired.values())  # one C-level copy: the apply thread may be changing it
        return len(vips), sum(len(vip.slots) for vip in vips)

    def set_desired(self, vips: Mapping[str, Vip], complete: bool) -> None:
        """Replace the whole desired table. `complete` says every input partition was read to
        its end: from then on, VIPs the kernel has and this lacks are deleted (never before).
        Only records that differ from the previous table are planned at the next sync."""
        with self._lock:
            changes: dict[str, Vip | None] = {name: None for name in self._desired.records if name not in vips}
            changes.update(vips)
            self._update(changes, complete)

    def update(self, changes: Mapping[str, Vip | None], complete: bool = False) -> None:
        """Record changed records by topic key (None: deleted); the next sync plans just those.
        `complete` as in set_desired; False leaves `initialized` as it was."""
        with self._lock:
            self._update(changes, complete)

    def _update(self, changes: Mapping[str, Vip | None], complete: bool) -> None:
        touched, fresh = self._desired.update(changes)
        for reason in fresh:  # said once per record version, not on every sync
            log.warning("l4lb: not programmed: %s", reason)
        self._pending |= touched
        if complete and not self.initialized:
            self.initialized, self._full = True, True  # pruning needs the whole picture

    def resync(self) -> ApplyRecord:
        """Full read-back and compare, whatever the dirty flag says."""
        self._actual = None
        self._full = True
        record = self.sync()
        assert record is not None
        return record

    def sync(self) -> ApplyRecord | None:
        """Apply the desired state if anything changed; None when there was nothing to do.
        `observe`, `prepare` and `commit` in a row (the reconcile loop calls them one by one)."""
        if not self.dirty:
            return None
        started = time.perf_counter()
        try:
            actual = self.observe(full=False)
        except (NftError, OSError, TimeoutError) as exc:
            log.error("l4lb: reading the kernel failed: %s", exc)
            return self._record(False, None, time.perf_counter() - started, 0.0, 0.0, started, 0, str(exc))
        return self.commit(self.prepare(actual, started))

    def observe(self, full: bool) -> dict[str, TableState]:
        """The kernel's state: read back when `full`, at start and after any failure; else the
        state last read back, advanced by every transaction committed since (see the module
        doc for why not every time)."""
        if full:
            self._actual = None
        if self._actual is None:
            started = time.perf_counter()
            self._actual = self.kernel.read()
            self._read_s = time.perf_counter() - started  # the next plan covers every VIP
        return self._actual

    def prepare(self, actual: dict[str, TableState], started: float | None = None) -> Prepared:
        """Plan the changes recorded since the last sync against `actual` (pure planning).

        Steady state plans only the changed keys against the kept state (plan_changes); the
        first sync, any sync after a failure, and resync plan every VIP, which is what repairs
        drift. A change the partial planner cannot express (a table to create, replace or
        delete) is planned whole against the kept state.
        """
        started = time.perf_counter() if started is None else started
        fresh, self._read_s = self._read_s, None
        read_s = fresh or 0.0
        with self._lock:
            full, keys, initialized = self._full or fresh is not None, self._pending, self.initialized
            self._pending, self._full = set(), False
            desired, names = self._snapshot(None if full else keys)
        t_plan = time.perf_counter()
        p = None if full else plan_changes(desired, actual, keys, initialized)
        if p is None:
            if not full:
                with self._lock:
                    desired, names = self._snapshot(None)
                full = True
            p = plan(desired, actual, initialized)
        return Prepared(p, full, keys, initialized, desired, names, started, read_s, time.perf_counter() - t_plan)

    def commit(self, prepared: Prepared) -> ApplyRecord:
        """The one side-effecting step: the nft transaction, then conntrack flushes and routes."""
        p, full, keys, initialized = prepared.plan, prepared.full, prepared.keys, prepared.initialized
        desired, started, read_s, plan_s = prepared.desired, prepared.started, prepared.read_s, prepared.plan_s
        apply_s = 0.0
        try:
            if p.text:
                t_apply = time.perf_counter()
                self.kernel.transact(p)
                apply_s = time.perf_counter() - t_apply
        except (NftError, OSError, TimeoutError) as exc:
            # The transaction is atomic: the kernel still holds the last good state. Read it
            # back next time instead of trusting our copy.
            self._actual = None
            log.error("l4lb: sync failed, kernel keeps its last good state: %s", exc)
            return self._record(False, None, read_s, plan_s, apply_s, started, 0, str(exc))
        after = self._actual = advance(self._actual, p)
        if full:
            for state in after.values():
                state.index()  # built here, so the first partial plan does not pay for it
        scope = None if full else keys
        flushed = self._after_commit(self._udp_flushes(p, desired, initialized, scope), after, initialized, scope)
        if flushed is not None:  # else keep the old one, so the next sync computes the flushes again
            if full:
                self._last_desired = desired
            else:
                for key in keys:
                    if key in desired:
                        self._last_desired[key] = desired[key]
                    else:
                        self._last_desired.pop(key, None)
        self._stamp(p, after, prepared.names, scope)
        if p.text:
            log.info(
                "l4lb: applied %d changed, %d removed%s in %.1f ms",
                len(p.changed), len(p.removed), f", rebuilt {','.join(p.rebuilt)}" if p.rebuilt else "", apply_s * 1000,
            )
        return self._record(True, p, read_s, plan_s, apply_s, started, flushed, None)

    def _snapshot(self, keys: set[VipKey] | None) -> tuple[dict[VipKey, KernelVip], dict[VipKey, str]]:
        """Copies (under the lock) of the desired entries of `keys`, or of all (None): update()
        may change the table while the plan runs on another thread."""
        table = self._desired
        if keys is None:
            return dict(table.kernel), dict(table.names)
        return ({k: table.kernel[k] for k in keys if k in table.kernel}, {k: table.names[k] for k in keys if k in table.names})

    def _stamp(self, p: Plan, after: dict[str, TableState], names: dict[VipKey, str], scope: set[VipKey] | None) -> None:
        """applied_at: when each live topic key last reached the kernel as desired."""
        now = self.clock()
        live = {k: n for k, n in names.items() if k in after[family_of(k[0]).name].vips}
        if scope is None:
            gone = set(self.applied_at) - set(live.values())
            self._stamped = {}
        else:  # only the planned keys can have changed
            gone = {old for k in scope if (old := self._stamped.pop(k, None)) is not None and live.get(k) != old}
        for name in gone:
            self.applied_at.pop(name, None)
        changed = set(p.changed)
        for key, name in live.items():
            if key in changed or name not in self.applied_at:
                self.applied_at[name] = now
            self._stamped[key] = name

    def _udp_flushes(
        self, p: Plan, desired: dict[VipKey, KernelVip], initialized: bool, scope: set[VipKey] | None
    ) -> list[Flush]:
        """The planner's flushes (backends the kernel held that left), plus backends that left
        while drained: a drained backend has no slot, so only the previous desired state
        remembers it (after a restart such flows simply age out)."""
        flushes = list(p.flushes)
        listed = {(f.vip, f.port) for f in flushes}
        for key in self._last_desired if scope is None else scope:
            old, new = self._last_desired.get(key), desired.get(key)
            if old is None or key[1] != "udp" or (key[0], key[2]) in listed or (new is None and not initialized):
                continue
            keep = frozenset(new.slots) | new.drained if new is not None else frozenset()
            if (frozenset(old.slots) | old.drained) - keep:
                flushes.append(Flush(key[0], key[2], keep))
        return flushes

    def _after_commit(self, flushes: list[Flush], after: dict[str, TableState], initialized: bool,
                      scope: set[VipKey] | None) -> int | None:
        """Conntrack flushes and node routes: after the nft commit, and never fatal (the VIPs
        themselves are programmed; a failure is logged, and the next sync reads the kernel and
        tries again). Returns the entries flushed, None when flushing failed.

        A partial sync whose VIPs all lie in the configured ranges cannot change the routes (the
        range routes stand; only outliers get host routes), so it skips the route dump and the
        pass over every VIP address."""
        flushed: int | None = 0
        try:
            flushed = self.kernel.flush(flushes) if flushes else 0
        except (OSError, TimeoutError) as exc:
            log.error("l4lb: conntrack flush failed: %s", exc)
            self._actual, flushed = None, None
        if self.route_dev and (scope is None or not covered(self.vip_ranges, {k[0] for k in scope})):
            try:
                vip_ips = (ip for state in after.values() for ip in state.vip_ips)
                add, delete = plan_routes(self.vip_ranges, vip_ips, self.kernel.owned_routes(), initialized)
                if add or delete:
                    self.kernel.change_routes(add, delete, self.route_dev)
            except (OSError, TimeoutError, ValueError) as exc:
                log.error("l4lb: node routes not updated: %s", exc)
                self._actual = None
        return flushed

    def _record(self, ok, p, read_s, plan_s, apply_s, started, flushed, error) -> ApplyRecord:
        record = ApplyRecord(
            at=self.clock(), ok=ok, rebuilt=tuple(p.rebuilt) if p else (), changed=len(p.changed) if p else 0,
            removed=len(p.removed) if p else 0, flushed=flushed, text_bytes=len(p.text) if p else 0,
            read_s=read_s, plan_s=plan_s, apply_s=apply_s, total_s=time.perf_counter() - started, error=error,
            partial=p is not None and p.scope is not None,
        )
        self.history.append(record)
        if self.on_apply:
            self.on_apply(record)
        return record

    def programmed(self) -> dict[str, Vip]:
        """What the kernel does now, read back (for `wayfinder vips`). One backend per slot
        (a weight-2 backend shows twice); names and task ids come from the desired record
        when it matches, since the kernel does not hold them."""
        with self._lock:
            desired = dict(self._desired.records)
        by_key: dict[VipKey, Vip] = {}
        for vip in desired.values():
            by_key[(vip.ip, vip.protocol, vip.port)] = vip
        out = {}
        for state in self.kernel.read_elements().values():
            for key, kv in sorted(state.kernel_vips().items()):
                if kv is None:
                    continue
                known = by_key.get(key)
                tasks = {(b.ip, b.port): b for b in known.backends} if known else {}
                backends = [Backend(ip, port, 1, tasks[(ip, port)].task_id if (ip, port) in tasks else "") for ip, port in kv.slots]
                out[schema_key(key)] = Vip(
                    kv.proto, kv.ip, kv.port, backends,
                    name=known.name if known else None, framework=known.framework if known else None,
                    dns=known.dns if known else None,
                )
        return out
