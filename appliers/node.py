"""`wayfinder node`: one process per node, running the chosen roles against the derived topics.

The l4lb role follows the ``vips`` table: it catches up on the whole topic before it lets
the applier prune anything, then applies each batch of changes in one coalesced sync, and
repairs drift with a full resync on a timer. Each change's convergence (kernel applied time
minus the producer's observed time from the record headers) is kept for metrics and benches.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

from appliers.dns.l4lb_names import changed_sets, vip_records
from appliers.dns.role import DnsRole
from appliers.dns.zone import ZoneSet
from appliers.l4lb.applier import L4Applier
from appliers.l4lb.kernel import Kernel
from appliers.options import NodeOptions
from runtime.kafka.follower import CatchUpProgress, TableFollower
from runtime.kafka.reader import ConsumedRecord
from schemas import codec
from schemas.headers import RecordMeta
from schemas.l4lb import Vip

log = logging.getLogger(__name__)

ROLES = ("l4lb", "dns")


@dataclass
class L4Role:
    """The l4lb role: the vips topic into the node's kernel."""

    options: NodeOptions
    convergence_s: deque = field(default_factory=lambda: deque(maxlen=100_000))
    # Called with the records of each successful sync and the time the kernel had them.
    on_applied: Callable[[list[ConsumedRecord], float], None] | None = None
    # Where the names of programmed VIPs go (the dns role's zones), if this node serves DNS.
    zones: ZoneSet | None = None
    _names: dict = field(default_factory=dict)
    applier: L4Applier | None = None
    caught_up: asyncio.Event = field(default_factory=asyncio.Event)
    progress: CatchUpProgress = field(default_factory=lambda: CatchUpProgress(log, "l4lb"))

    async def run(self, stop: asyncio.Event) -> None:
        options = self.options
        kernel = Kernel(options.netns)
        self.applier = L4Applier(kernel, route_dev=options.route_dev, vip_ranges=options.vip_ranges)
        follower = TableFollower(options.bootstrap, options.catalog.topic("vips").name)
        # The applier and the follower are each used from one thread of their own.
        kernel_thread, kafka_thread = ThreadPoolExecutor(1, "l4lb-apply"), ThreadPoolExecutor(1, "l4lb-follow")
        loop = asyncio.get_running_loop()
        try:
            table = await loop.run_in_executor(kafka_thread, follower.catch_up, options.catch_up_timeout,
                                               self.progress)
            desired = {key: vip for key, value in table.items() if (vip := _decode(key, value)) is not None}
            self.applier.set_desired(desired, complete=True)
            await loop.run_in_executor(kernel_thread, self.applier.sync)
            self._publish_names(desired)
            log.info("l4lb: caught up on %d VIPs and programmed them", len(desired))
            self.caught_up.set()
            next_resync = time.monotonic() + options.resync_interval
            while not stop.is_set():
                records = await loop.run_in_executor(kafka_thread, follower.changes, 0.1)
                if records:
                    changes: dict[str, Vip | None] = {}
                    for record in records:
                        vip = _decode(record.key, record.value) if record.value is not None else None
                        changes[record.key] = vip
                        if vip is None:
                            desired.pop(record.key, None)
                        else:
                            desired[record.key] = vip
                    self.applier.update(changes)  # only what changed: O(changes), not O(table)
                    applied = await loop.run_in_executor(kernel_thread, self.applier.sync)
                    if applied is not None and applied.ok:
                        self._publish_names(desired)
                        self._measure(records, applied.at)
                        if self.on_applied:
                            self.on_applied(records, applied.at)
                if time.monotonic() >= next_resync:
                    await loop.run_in_executor(kernel_thread, self.applier.resync)
                    next_resync = time.monotonic() + options.resync_interval
        finally:
            follower.close()
            kernel.close()
            kernel_thread.shutdown(wait=True)
            kafka_thread.shutdown(wait=True)

    def _publish_names(self, desired: dict[str, Vip]) -> None:
        """Give the DNS zones the names of the VIPs the kernel has now, and only those."""
        if self.zones is None:
            return
        in_kernel = [vip for key, vip in desired.items() if key in self.applier.applied_at]
        names = vip_records(in_kernel)
        for (name, kind), records in changed_sets(self._names, names).items():
            self.zones.upsert(name, kind, records)
        self._names = names

    def _measure(self, records, applied_at: float) -> None:
        for record in records:
            meta = RecordMeta.from_headers(record.headers)
            if meta:
                self.convergence_s.append(applied_at - meta.observed_ns / 1e9)


def _decode(key: str, value: bytes | None) -> Vip | None:
    try:
        return codec.decode(value, Vip)
    except msgspec.ValidationError as error:
        log.error("l4lb: VIP record %s does not match its schema, keeping the rest: %s", key, error)
        return None


class Node:
    def __init__(self, options: NodeOptions):
        unknown = set(options.roles) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown roles {sorted(unknown)}; this node knows {', '.join(ROLES)}")
        self.options = options
        self.dns = DnsRole(options) if "dns" in options.roles else None
        self.l4lb = L4Role(options, zones=self.dns.zones if self.dns else None) if "l4lb" in options.roles else None

    async def run(self, stop: asyncio.Event) -> None:
        roles = [self.l4lb.run(stop)] if self.l4lb else []
        if self.dns:
            roles.append(self.dns.run(stop, [self.l4lb.caught_up] if self.l4lb else []))
        await asyncio.gather(*roles)
