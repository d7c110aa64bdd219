"""`wayfinder node --metrics-listen`: the node's metrics, read at scrape time from the roles'
reconcile loops and seams (runtime/metrics.py says why at scrape time), plus the DNS workers'
reports when the dns role runs in worker processes (appliers/dns/metrics.py).

Runs on the node's event loop (the endpoint is served there): the loops and the DNS server
live on it; what threaded roles change (the l4lb applier's kernel state, HAProxy's counters)
is read as one copy or one integer.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import Metric

from appliers.dns import metrics as dns_metrics
from runtime.metrics import APPLY_SECONDS, CONVERGENCE, Samples, add_samples, families, histogram_kinds, sample
from runtime.reconcile import ReconcileLoop

KINDS: dict[str, tuple[str, str]] = {
    "wayfinder_role_ready": ("gauge", "1 once the role is ready (caught up with outputs that reflect a synced "
                             "producer, and every role it waits for is ready); 0 before."),
    "wayfinder_role_passes": ("counter", "Reconcile passes that succeeded (observe, plan, apply)."),
    "wayfinder_role_apply_failures": ("counter", "Reconcile passes that failed: the target kept its last good state."),
    "wayfinder_role_refused_records": ("counter", "Records of the followed table refused (not decodable): the key "
                                       "keeps its last good entry."),
    "wayfinder_role_desired_entries": ("gauge", "Entries of the followed table the role holds as desired."),
    "wayfinder_l4lb_vips": ("gauge", "VIPs (address, protocol, port) programmed in the node's kernel."),
    "wayfinder_l4lb_backends": ("gauge", "Backends of those VIPs programmed in the node's kernel."),
    "wayfinder_haproxy_reloads": ("counter", "HAProxy config swaps (reloads, the first start included)."),
    "wayfinder_haproxy_runtime_passes": ("counter", "HAProxy changes made through the runtime API, without a reload."),
    "wayfinder_overlay_operations": ("counter", "Kernel and CNI file operations the overlay role applied."),
    **histogram_kinds(CONVERGENCE, APPLY_SECONDS),
    **dns_metrics.KINDS,
}
# Samples of a loop that a DNS worker reports (readiness is not among them: the node asks
# each worker whether it is ready instead of adding readiness up).
LOOP_COUNTERS = ("wayfinder_role_passes_total", "wayfinder_role_apply_failures_total",
                 "wayfinder_role_refused_records_total")


def loop_samples(name: str, loop: ReconcileLoop) -> Samples:
    """A reconcile loop's counters, labelled with its role."""
    found: Samples = {}
    for metric, value in zip(LOOP_COUNTERS, (loop.passes, loop.failures, loop.refused)):
        found[sample(metric, value, role=name)[0]] = value
    found[sample("wayfinder_role_desired_entries", 0, role=name)[0]] = len(loop.desired)
    return found


def role_samples(name: str, loop: ReconcileLoop) -> Samples:
    """What one role's seam counts (l4lb: the kernel's VIPs; haproxy: reloads; dns: queries)."""
    role = loop.role
    if name == "l4lb":
        vips, backends = role.applier.programmed_counts()
        return {("wayfinder_l4lb_vips", ()): vips, ("wayfinder_l4lb_backends", ()): backends}
    if name == "haproxy":
        return {("wayfinder_haproxy_reloads_total", ()): role.reloads,
                ("wayfinder_haproxy_runtime_passes_total", ()): role.runtime_passes}
    if name == "overlay":
        return {("wayfinder_overlay_operations_total", ()): role.operations}
    if name == "dns":
        return dns_metrics.dns_samples(role.server, role.forwarder)
    return {}


def worker_report(dns: ReconcileLoop) -> Samples:
    """What a DNS worker process sends the node: its dns loop, server and histograms."""
    found = {**loop_samples("dns", dns), **role_samples("dns", dns)}
    found.update(CONVERGENCE.samples())
    found.update(APPLY_SECONDS.samples())
    return found


class NodeCollector:
    """The node's samples at scrape time (register with `runtime.metrics.serving`)."""

    def __init__(self, node) -> None:
        self.node = node  # appliers.node.Node

    def collect(self) -> Iterator[Metric]:
        node, found = self.node, {}
        found.update(CONVERGENCE.samples())
        found.update(APPLY_SECONDS.samples())
        for name, loop in node.loops.items():
            found[sample("wayfinder_role_ready", 0, role=name)[0]] = float(loop.ready.is_set())
            add_samples(found, loop_samples(name, loop))
            add_samples(found, role_samples(name, loop))
        workers = node.dns_workers
        if workers is not None:
            ready = len(workers.workers) == workers.count and all(w.ready for w in workers.workers.values())
            found[sample("wayfinder_role_ready", 0, role="dns")[0]] = float(ready)
            add_samples(found, workers.totals.total(w.samples for w in workers.workers.values()))
        yield from families(found, KINDS)


EXPORTED = frozenset(
    {f"{name}_total" if kind == "counter" else name for name, (kind, _) in KINDS.items()})
