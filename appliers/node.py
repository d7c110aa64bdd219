"""`wayfinder node`: one process per node, running the chosen roles against the derived topics.

Every role runs in the same reconcile loop (runtime.reconcile): catch-up, readiness, batching,
resync, convergence. This module only chooses the roles, gives each its seam (the kernel, the
DNS zones and server) and its follower, and declares which role waits for which
(`DEPENDENCIES`): a waiting role becomes ready only after the other one is, and may take part
of its desired state from the other one's applied state.

The node follows the status topic once for all roles: it is their readiness gate (a ready
processor mark), and it says when the upstream goes stale, which the node logs once per
transition while it keeps serving its last good state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from appliers.dns.role import DnsRole
from appliers.l4lb.kernel import Kernel
from appliers.l4lb.role import L4lbRole
from appliers.options import NodeOptions
from runtime.kafka.follower import TableFollower
from runtime.kafka.status import StatusWatch
from runtime.reconcile import ProcessorGate, ReconcileLoop
from runtime.status import UpstreamLog
from schemas.status import HEARTBEAT_S

log = logging.getLogger(__name__)

ROLES = ("l4lb", "dns")
TOPICS = {"l4lb": "vips", "dns": "dns"}  # the derived table each role follows (catalog alias)


def _vip_names(l4lb: ReconcileLoop, dns: ReconcileLoop) -> Mapping:
    """A VIP's DNS name only once the node's kernel has the VIP (dcos-net's lesson)."""
    return dns.role.vip_names(l4lb.role.in_kernel(l4lb.desired))


@dataclass(frozen=True)
class Dependency:
    """`role` becomes ready only after `waits_for` is; `feed`, when set, turns the applied
    state of `waits_for` into desired entries of `role` after each of its passes."""

    role: str
    waits_for: str
    feed: Callable[[ReconcileLoop, ReconcileLoop], Mapping] | None = None


DEPENDENCIES = (Dependency("dns", "l4lb", feed=_vip_names),)


def wire(loops: Mapping[str, ReconcileLoop]) -> None:
    """Apply `DEPENDENCIES` to the loops of the roles this node runs (role name -> loop)."""
    for dependency in DEPENDENCIES:
        waiting, other = loops.get(dependency.role), loops.get(dependency.waits_for)
        if waiting is None or other is None:
            continue
        waiting.waits_for += (other,)
        if dependency.feed is not None:
            other.after_apply(lambda feed=dependency.feed, waiting=waiting, other=other:
                              waiting.feed(feed(other, waiting)))


class Node:
    def __init__(self, options: NodeOptions, *, gate: ProcessorGate | None = None) -> None:
        unknown = set(options.roles) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown roles {sorted(unknown)}; this node knows {', '.join(ROLES)}")
        self.options = options
        self.status = StatusWatch(options.bootstrap, options.catalog.topic("status").name)
        self.gate = gate if gate is not None else self.status
        self.upstream = UpstreamLog(log, f"node {options.node_id}")
        self.loops: dict[str, ReconcileLoop] = {}
        for name in ROLES:  # in dependency order
            if name in options.roles:
                self.loops[name] = self._loop(name)
        wire(self.loops)

    def _loop(self, name: str) -> ReconcileLoop:
        options = self.options
        follower = TableFollower(options.bootstrap, options.catalog.topic(TOPICS[name]).name)
        if name == "l4lb":
            role = L4lbRole(Kernel(options.netns), route_dev=options.route_dev, vip_ranges=options.vip_ranges)
            resync = options.resync_interval
        else:
            role = DnsRole(options)
            resync = None  # the zones are this process's memory: nothing else can change them
        return ReconcileLoop(role, follower, self.gate, resync_interval=resync,
                             catch_up_timeout=options.catch_up_timeout)

    @property
    def l4lb(self) -> ReconcileLoop | None:
        return self.loops.get("l4lb")

    @property
    def dns(self) -> ReconcileLoop | None:
        return self.loops.get("dns")

    async def run(self, stop: asyncio.Event) -> None:
        status = asyncio.create_task(self.status.run(stop))
        health = asyncio.create_task(self._watch_upstream(stop))
        roles = [asyncio.create_task(loop.run(stop)) for loop in self.loops.values()]
        try:
            # One role failing stops the node: a half-running node would look healthy.
            await asyncio.wait([*roles, status], return_when=asyncio.FIRST_EXCEPTION)
        finally:
            stop.set()
            results = await asyncio.gather(*roles, status, health, return_exceptions=True)
        failed = [result for result in results if isinstance(result, BaseException)]
        if failed:
            raise failed[0]

    async def _watch_upstream(self, stop: asyncio.Event) -> None:
        """Once a role is ready, say when the upstream goes stale and when it is back."""
        while not stop.is_set():
            if any(loop.ready.is_set() for loop in self.loops.values()):
                self.upstream.check(self.status.marks, time.time())
            try:
                await asyncio.wait_for(stop.wait(), HEARTBEAT_S)
            except asyncio.TimeoutError:
                pass
