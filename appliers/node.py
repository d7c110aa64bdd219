"""`wayfinder node`: one process per node, running the chosen roles against the derived topics.

Every role runs in the same reconcile loop (runtime.reconcile): catch-up, readiness, batching,
resync, convergence. This module only chooses the roles, gives each its seam (the kernel, the
DNS zones and server) and its follower, and declares which role waits for which
(`DEPENDENCIES`): a waiting role becomes ready only after the other one is, and may take part
of its desired state from the other one's applied state.

With `--dns-workers N` (N > 1) the dns role runs in N worker processes sharing the DNS port
(appliers/dns/workers.py), each with its own follower, zones and loop; this process runs the
other roles and supervises the workers. A dependency's two halves (`export`, `take`) are apart
for that: this process exports the l4lb role's VIPs in the kernel, and its readiness, to every
worker, and each worker's dns loop takes them as it would here. VIP names thus still follow
the kernel this process programs, and each worker's dns role is still ready only after l4lb.

The node follows the status topic once for all roles. Each loop gates on its own table
(`TableGate`): a processor mark that lists that table as ready, so a cluster without Marathon
gets DNS and VIPs while the haproxy role waits. The status topic also says when the upstream
goes stale, which the node logs once per transition while it keeps serving its last good state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from appliers.dns.role import DnsRole
from appliers.dns.vip_table import VipTableRole, vips_followed
from appliers.dns.workers import DnsWorkers
from appliers.haproxy.role import HaproxyRole
from appliers.l4lb.kernel import Kernel
from appliers.l4lb.role import L4lbRole
from appliers.options import NodeOptions, check_dns_workers
from appliers.overlay.configdir import ConfigDir
from appliers.overlay.kernel import OverlayKernel
from appliers.overlay.role import OverlayRole
from runtime.kafka.follower import TableFollower
from runtime.kafka.status import StatusWatch, TableGate
from runtime.logs import log_context
from runtime.reconcile import Dependency, ProcessorGate, ReconcileLoop
from runtime.status import UpstreamLog
from runtime.blocking import sleep_or_stop
from schemas.l4lb import Vip
from schemas.status import HEARTBEAT_S

log = logging.getLogger(__name__)

ROLES = ("l4lb", "dns", "haproxy", "overlay")
# The derived table each loop follows (catalog alias). "vips" is no role to ask for: a node
# that runs dns without l4lb follows the vips table for the VIP names (appliers/dns/vip_table.py).
TOPICS = {"l4lb": "vips", "vips": "vips", "dns": "dns", "haproxy": "haproxy", "overlay": "overlay"}


def _vips_in_kernel(l4lb: ReconcileLoop) -> Mapping[str, Vip]:
    """The VIPs the node's kernel holds, by topic key: the l4lb role's applied state."""
    return l4lb.role.in_kernel(l4lb.desired)


def _vip_names(dns: ReconcileLoop, in_kernel: Mapping[str, Vip]) -> Mapping:
    """A VIP's DNS name only once the node's kernel has the VIP (dcos-net's lesson)."""
    return dns.role.vip_names(in_kernel)


DEPENDENCIES = (Dependency("dns", "l4lb", export=_vips_in_kernel, take=_vip_names, exported=Vip),
                Dependency("dns", "vips", export=vips_followed, take=_vip_names, exported=Vip))


def loops_for(roles: tuple[str, ...]) -> list[str]:
    """The loops a node runs for its roles, in dependency order: a dns role without l4lb
    also follows the vips table, for the VIP names every dcos-dns node answers."""
    names = [name for name in ROLES if name in roles]
    if "dns" in names and "l4lb" not in names:
        names.insert(names.index("dns"), "vips")
    return names


def wire(loops: Mapping[str, ReconcileLoop]) -> None:
    """Apply `DEPENDENCIES` to the loops of the roles this node runs (role name -> loop)."""
    for dependency in DEPENDENCIES:
        waiting, other = loops.get(dependency.role), loops.get(dependency.waits_for)
        if waiting is None or other is None:
            continue
        waiting.waits_for += (other,)
        if dependency.export is not None and dependency.take is not None:
            other.after_apply(lambda d=dependency, waiting=waiting, other=other:
                              waiting.feed(d.take(waiting, d.export(other))))


class Node:
    def __init__(self, options: NodeOptions, *, gate: ProcessorGate | None = None) -> None:
        unknown = set(options.roles) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown roles {sorted(unknown)}; this node knows {', '.join(ROLES)}")
        check_dns_workers(options)
        self.options = options
        self.status = StatusWatch(options.bootstrap, options.catalog.topic("status").name)
        self.gate = gate  # one gate for every loop (tests); None: each loop gates on its own table
        worker = options.dns_worker
        self.upstream = UpstreamLog(log, f"node {options.node_id}" + (f" dns worker {worker}" if worker is not None else ""))
        self.watch_upstream = not worker  # one process of a node says it, not every DNS worker
        # DNS on several processes: this one supervises them and runs the other roles.
        # A DNS worker runs the dns loop alone: what it waits for runs in the node's own process.
        names = ["dns"] if worker is not None else loops_for(options.roles)
        self.dns_workers: DnsWorkers | None = None
        if options.dns_workers > 1 and worker is None:
            self.dns_workers = DnsWorkers(options, shared=[d for d in DEPENDENCIES if d.role == "dns"
                                                           and d.waits_for in names])
        self.loops: dict[str, ReconcileLoop] = {}
        for name in names:
            if not (name == "dns" and self.dns_workers is not None):
                self.loops[name] = self._loop(name)
        wire(self.loops)
        if self.dns_workers is not None:
            self.dns_workers.wire(self.loops)

    def _loop(self, name: str) -> ReconcileLoop:
        options = self.options
        follower = TableFollower(options.bootstrap, options.catalog.topic(TOPICS[name]).name)
        if name == "l4lb":
            role = L4lbRole(Kernel(options.netns), route_dev=options.route_dev, vip_ranges=options.vip_ranges)
            resync = options.resync_interval
        elif name == "vips":
            role, resync = VipTableRole(), None
        elif name == "haproxy":
            # The periodic pass brings back services left out while another process held their port.
            role, resync = HaproxyRole(options.haproxy), options.resync_interval
        elif name == "overlay":
            config_dir = ConfigDir(options.overlay_dir) if options.overlay_dir else None
            role = OverlayRole(OverlayKernel(options.netns), options.agent_ip, config_dir)
            resync = options.resync_interval  # repairs drift (a route deleted by hand)
        else:
            role = DnsRole(options)
            resync = None  # the zones are this process's memory: nothing else can change them
        gate = self.gate if self.gate is not None else TableGate(self.status, TOPICS[name])
        return ReconcileLoop(role, follower, gate, resync_interval=resync,
                             catch_up_timeout=options.catch_up_timeout)

    @property
    def l4lb(self) -> ReconcileLoop | None:
        return self.loops.get("l4lb")

    @property
    def dns(self) -> ReconcileLoop | None:
        return self.loops.get("dns")

    async def run(self, stop: asyncio.Event) -> None:
        # Every task below copies the context: each line logged in this node says which node.
        with log_context(node_id=self.options.node_id):
            await self._run(stop)

    async def _run(self, stop: asyncio.Event) -> None:
        server = None
        if self.options.status_listen and self.options.dns_worker is None:
            from appliers.status_server import NodeStatusServer

            server = NodeStatusServer(self.options.status_listen, self.loops)
            await server.start()
        try:
            await self._run_roles(stop)
        finally:
            if server is not None:
                await server.stop()

    async def _run_roles(self, stop: asyncio.Event) -> None:
        status = asyncio.create_task(self.status.run(stop))
        health = asyncio.create_task(self._watch_upstream(stop))
        roles = [asyncio.create_task(loop.run(stop)) for loop in self.loops.values()]
        if self.dns_workers is not None:
            roles.append(asyncio.create_task(self.dns_workers.run(stop)))
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
        while not stop.is_set() and self.watch_upstream:
            if any(loop.ready.is_set() for loop in self.loops.values()):
                self.upstream.check(self.status.marks, time.time())
            await sleep_or_stop(stop, HEARTBEAT_S)
