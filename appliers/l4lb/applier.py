"""The L4 reconcile object: desired VIPs in, one atomic nft transaction per sync out.

kube-proxy's shape: `set_desired` only records and marks dirty; `sync` (called by the
coalescing loop) reads, plans and applies; `resync` forces a full read-back so drift (an
element deleted by hand) is repaired.

Why `sync` does not read the kernel every time: listing a 10k-VIP table costs ~1.3 s
(terse + JSON listing + parse) against ~1 ms for the change itself (reference 1.4 measured
the same). So the applier keeps the state it read back, advanced by each committed plan
(`Plan.after`, exactly what the atomic transaction produced), and reads the kernel again at
start, after any failure, and on every `resync`. `programmed()` always reads the kernel.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Mapping

from appliers.l4lb.kernel import Kernel, NftError
from appliers.l4lb.model import FAMILIES, Converted, KernelVip, TableState, VipKey, desired_vips, schema_key
from appliers.l4lb.plan import Flush, Plan, plan, plan_routes
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
        self._desired: dict[str, Vip] = {}
        self._wanted: tuple[dict[VipKey, KernelVip], dict[VipKey, str]] = ({}, {})  # kernel form
        self._refused: set[str] = set()
        self._converted: Converted = {}  # set_desired's cache of unchanged records
        self._generation = 0  # bumped by set_desired; sync clears dirty only for what it saw
        self._synced_generation = -1
        self._actual: dict[str, TableState] | None = None  # None: read the kernel next sync
        self._last_desired: dict[VipKey, KernelVip] = {}  # as of the last successful sync
        self._lock = threading.Lock()

    @property
    def dirty(self) -> bool:
        return self._generation != self._synced_generation or self._actual is None

    def set_desired(self, vips: Mapping[str, Vip], complete: bool) -> None:
        """Record the desired VIPs. `complete` says every input partition was read to its end:
        from then on, VIPs the kernel has and this lacks are deleted (never before)."""
        desired, keys, refused = desired_vips(vips, self._converted)
        for reason in sorted(set(refused) - self._refused):  # say it once, not on every update
            log.warning("l4lb: not programmed: %s", reason)
        with self._lock:
            self._desired = dict(vips)
            self._wanted = (desired, keys)
            self._refused = set(refused)
            self.initialized = self.initialized or complete
            self._generation += 1

    def resync(self) -> ApplyRecord:
        """Full read-back and compare, whatever the dirty flag says."""
        self._actual = None
        record = self.sync()
        assert record is not None
        return record

    def sync(self) -> ApplyRecord | None:
        """Apply the desired state if anything changed; None when there was nothing to do."""
        if not self.dirty:
            return None
        with self._lock:
            (desired, keys), generation, initialized = self._wanted, self._generation, self.initialized
        started = time.perf_counter()
        read_s = apply_s = 0.0
        try:
            if self._actual is None:
                self._actual = self.kernel.read()
                read_s = time.perf_counter() - started
            t_plan = time.perf_counter()
            p = plan(desired, self._actual, initialized)
            plan_s = time.perf_counter() - t_plan
            if p.text:
                t_apply = time.perf_counter()
                self.kernel.run(p.text)
                apply_s = time.perf_counter() - t_apply
        except (NftError, OSError, TimeoutError) as exc:
            # The transaction is atomic: the kernel still holds the last good state. Read it
            # back next time instead of trusting our copy.
            self._actual = None
            log.error("l4lb: sync failed, kernel keeps its last good state: %s", exc)
            return self._record(False, None, read_s, 0.0, apply_s, started, 0, str(exc))
        after = self._actual = {f.name: p.after[f.name] for f in FAMILIES}
        vip_ips = {ip for state in after.values() for ip in state.vip_ips}
        flushed = self._after_commit(self._udp_flushes(p, desired, initialized), vip_ips, initialized)
        if flushed is not None:  # else keep the old one, so the next sync computes the flushes again
            self._last_desired = desired
        now = self.clock()
        live = {k for state in after.values() for k in state.vips}
        changed = set(p.changed)
        for key, name in keys.items():
            if key in live and (key in changed or name not in self.applied_at):
                self.applied_at[name] = now
        for name in set(self.applied_at) - {keys[k] for k in keys if k in live}:
            del self.applied_at[name]
        self._synced_generation = generation
        if p.text:
            log.info(
                "l4lb: applied %d changed, %d removed%s in %.1f ms",
                len(p.changed), len(p.removed), f", rebuilt {','.join(p.rebuilt)}" if p.rebuilt else "", apply_s * 1000,
            )
        return self._record(True, p, read_s, plan_s, apply_s, started, flushed, None)

    def _udp_flushes(self, p: Plan, desired: dict[VipKey, KernelVip], initialized: bool) -> list[Flush]:
        """The planner's flushes (backends the kernel held that left), plus backends that left
        while drained: a drained backend has no slot, so only the previous desired state
        remembers it (after a restart such flows simply age out)."""
        flushes = list(p.flushes)
        listed = {(f.vip, f.port) for f in flushes}
        for key, old in self._last_desired.items():
            new = desired.get(key)
            if key[1] != "udp" or (key[0], key[2]) in listed or (new is None and not initialized):
                continue
            keep = frozenset(new.slots) | new.drained if new is not None else frozenset()
            if (frozenset(old.slots) | old.drained) - keep:
                flushes.append(Flush(key[0], key[2], keep))
        return flushes

    def _after_commit(self, flushes: list[Flush], vip_ips: set[str], initialized: bool) -> int | None:
        """Conntrack flushes and node routes: after the nft commit, and never fatal (the VIPs
        themselves are programmed; a failure is logged, and the next sync reads the kernel and
        tries again). Returns the entries flushed, None when flushing failed."""
        flushed: int | None = 0
        try:
            flushed = self.kernel.flush(flushes) if flushes else 0
        except (OSError, TimeoutError) as exc:
            log.error("l4lb: conntrack flush failed: %s", exc)
            self._actual, flushed = None, None
        if self.route_dev:
            try:
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
            desired = dict(self._desired)
        by_key: dict[VipKey, Vip] = {}
        for vip in desired.values():
            by_key[(vip.ip, vip.protocol, vip.port)] = vip
        out = {}
        for state in self.kernel.read().values():
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
