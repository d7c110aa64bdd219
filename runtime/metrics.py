"""Prometheus metrics: the registry, the histograms every stage shares, and the `/metrics`
endpoint that `--metrics-listen HOST:PORT` starts on `produce`, `process` and `node`.

Two ways a number gets here, chosen by how hot the path that counts it is:
- prometheus_client objects (`Counter`, `Gauge`) in `REGISTRY`, incremented where the thing
  happens: rejections, producer events, processor batches. These paths run at most a few
  thousand times a second, and the objects are thread-safe (the processor counts on its work
  thread);
- plain attributes the code keeps anyway (the DNS server's `Counters`, a reconcile loop's
  `passes`), read at scrape time by a collector the command hands to `serving`. A DNS answer
  costs about 40 ns more for one list increment, where a prometheus_client `inc()` costs
  about 540 ns (measured with timeit, one core). Collectors run on the event loop (the
  endpoint is an aiohttp handler on the command's own loop), so they read the loop's state
  without locks.

`Histograms` is a minimal histogram of plain lists, for the same reason and one more: its
bucket counts are plain numbers, so a DNS worker process can send them to the node's process,
which adds them up (appliers/dns/worker_metrics.py).

The metric names are listed in the README ("Metrics"); `EXPORTED` is what the dashboard test
checks the dashboard's queries against.
"""

from __future__ import annotations

import asyncio
import logging
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, ProcessCollector, generate_latest
from prometheus_client.metrics_core import Metric

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)  # process_cpu_seconds_total, process_resident_memory_bytes, ...

# A sample as plain data: (sample name, sorted label pairs) -> value. What collectors build, and
# what a DNS worker sends to the node's process.
SampleKey = tuple[str, tuple[tuple[str, str], ...]]
Samples = dict[SampleKey, float]

# Convergence runs from milliseconds (a DNS record) to minutes (a node catching up after an
# outage); the apply steps from sub-millisecond (one zone swap) to seconds (10k VIPs).
CONVERGENCE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
APPLY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Histograms:
    """One histogram family with one label; not thread-safe (observe and scrape on one loop)."""

    def __init__(self, name: str, doc: str, label: str, buckets: tuple[float, ...]) -> None:
        self.name, self.doc, self.label, self.buckets = name, doc, label, buckets
        self._counts: dict[str, list[int]] = {}  # label value -> count per bucket, +Inf last
        self._sums: dict[str, float] = {}

    def observe(self, value_of_label: str, values: Iterable[float]) -> None:
        counts = self._counts.get(value_of_label)
        if counts is None:
            counts = self._counts[value_of_label] = [0] * (len(self.buckets) + 1)
            self._sums[value_of_label] = 0.0
        buckets, total = self.buckets, 0.0
        for value in values:
            counts[bisect_left(buckets, value)] += 1
            total += value
        self._sums[value_of_label] += total

    def samples(self) -> Samples:
        """Cumulative buckets, sum and count per label value, as Prometheus spells them."""
        found: Samples = {}
        for value_of_label, counts in list(self._counts.items()):
            running = 0
            for bound, count in zip([*map(_bound, self.buckets), "+Inf"], counts):
                running += count
                found[(f"{self.name}_bucket", ((self.label, value_of_label), ("le", bound)))] = running
            found[(f"{self.name}_count", ((self.label, value_of_label),))] = running
            found[(f"{self.name}_sum", ((self.label, value_of_label),))] = self._sums[value_of_label]
        return found

    def reset(self) -> None:
        self._counts.clear()
        self._sums.clear()


def _bound(value: float) -> str:
    return repr(float(value))


# -- the catalogue: every metric object, by stage --------------------------------------------

# node (the reconcile loop feeds these; appliers/metrics.py exports them with the rest)
CONVERGENCE = Histograms("wayfinder_node_convergence_seconds",
                         "From the producer observing a change to this node applying it, per role.",
                         "role", CONVERGENCE_BUCKETS)
APPLY_SECONDS = Histograms("wayfinder_role_apply_seconds",
                           "How long one apply step took (one nftables transaction, one zone swap, one HAProxy change).",
                           "role", APPLY_BUCKETS)

# every stage that publishes rejections (producers, processor)
REJECTIONS = Counter("wayfinder_rejections", "Inputs refused and published to the rejections topic, by who refused them.",
                     ["source"], registry=REGISTRY)

# producer
PRODUCER_EVENTS = Counter("wayfinder_producer_events", "Events read from the source's stream (Mesos RecordIO records, "
                          "Marathon SSE events), heartbeats included.", ["source"], registry=REGISTRY)
PRODUCER_CHANGES = Counter("wayfinder_producer_changes", "Changes published to the source tables.", ["source"],
                           registry=REGISTRY)
PRODUCER_RECONNECTS = Counter("wayfinder_producer_reconnects", "Times the source's stream (or poll) was lost and "
                              "opened again.", ["source"], registry=REGISTRY)
PRODUCER_SYNCS = Counter("wayfinder_producer_syncs", "Full syncs published (Mesos snapshot, Marathon resync).",
                         ["source"], registry=REGISTRY)

# processor
PROCESSOR_LAG = Gauge("wayfinder_processor_lag_records", "Records of a source topic not read yet.", ["topic"],
                      registry=REGISTRY)
PROCESSOR_CONSUMED = Counter("wayfinder_processor_consumed_records", "Source records read, by topic.", ["topic"],
                             registry=REGISTRY)
PROCESSOR_PUBLISHED = Counter("wayfinder_processor_published_records", "Derived records published, by output topic.",
                              ["topic"], registry=REGISTRY)
# Not in REGISTRY: a gauge without labels is exported (as 0) by every process that serves the
# registry, so a producer and a node would each report a "processor" that is not active. Only
# `process` hands it to `serving`.
PROCESSOR_ACTIVE = Gauge("wayfinder_processor_active", "1 while this processor is the active one of its namespace.",
                         registry=None)


class ProducerClock:
    """When each producer side last read an event, and last heard from its source at all
    (an event, a heartbeat, a resync, a poll): exported as seconds since, at scrape time."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.last_event: dict[str, float] = {}
        self.last_contact: dict[str, float] = {}

    def event(self, source: str) -> None:
        PRODUCER_EVENTS.labels(source).inc()
        self.last_event[source] = self.last_contact[source] = self.clock()

    def contact(self, source: str) -> None:
        self.last_contact[source] = self.clock()

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        for name, doc, times in (
                ("wayfinder_producer_seconds_since_last_event", "Seconds since the source's last event "
                 "(on a quiet Marathon this grows: alert on the last contact instead).", self.last_event),
                ("wayfinder_producer_seconds_since_last_contact", "Seconds since the source was last heard "
                 "from: an event, a Mesos heartbeat, a Marathon resync or a poll.", self.last_contact)):
            metric = Metric(name, doc, "gauge")
            for source, at in list(times.items()):
                metric.add_sample(name, {"source": source}, max(now - at, 0.0))
            yield metric


PRODUCER_CLOCK = ProducerClock()

EXPORTED = frozenset({
    # what `families` documents below plus the catalogue above; collectors register their own
    CONVERGENCE.name, APPLY_SECONDS.name, "wayfinder_rejections_total", "wayfinder_producer_events_total",
    "wayfinder_producer_changes_total", "wayfinder_producer_reconnects_total", "wayfinder_producer_syncs_total",
    "wayfinder_producer_seconds_since_last_event", "wayfinder_producer_seconds_since_last_contact",
    "wayfinder_processor_lag_records", "wayfinder_processor_consumed_records_total",
    "wayfinder_processor_published_records_total", "wayfinder_processor_active",
})


# -- samples as plain data -------------------------------------------------------------------

def sample(name: str, value: float, **labels: str) -> tuple[SampleKey, float]:
    return (name, tuple(sorted(labels.items()))), value


def add_samples(into: Samples, more: Mapping[SampleKey, float]) -> None:
    for key, value in more.items():
        into[key] = into.get(key, 0.0) + value


def families(found: Mapping[SampleKey, float], kinds: Mapping[str, tuple[str, str]]) -> Iterator[Metric]:
    """Samples grouped into metric families. `kinds`: family name -> (type, help); a counter's
    family is named without `_total`, a histogram's without `_bucket`/`_sum`/`_count`."""
    grouped: dict[str, Metric] = {}
    for (name, labels), value in sorted(found.items()):
        family = _family_of(name, kinds)
        metric = grouped.get(family)
        if metric is None:
            kind, doc = kinds[family]
            metric = grouped[family] = Metric(family, doc, kind)
        metric.add_sample(name, dict(labels), value)
    yield from grouped.values()


def _family_of(name: str, kinds: Mapping[str, tuple[str, str]]) -> str:
    if name in kinds:
        return name
    for suffix in ("_total", "_bucket", "_count", "_sum"):
        if name.endswith(suffix) and name[: -len(suffix)] in kinds:
            return name[: -len(suffix)]
    raise KeyError(f"no family for sample {name}")


def histogram_kinds(*histograms: Histograms) -> dict[str, tuple[str, str]]:
    return {h.name: ("histogram", h.doc) for h in histograms}


# -- the endpoint ----------------------------------------------------------------------------

class _Chain:
    """The registry and the command's own collectors, as one thing to expose."""

    def __init__(self, collectors: Iterable) -> None:
        self.collectors = [REGISTRY, *collectors]

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


class MetricsServer:
    """`/metrics` on HOST:PORT, served by aiohttp on the running event loop."""

    def __init__(self, host: str, port: int, collectors: Iterable = ()) -> None:
        self.host, self.port = host, port
        self.exposed = _Chain(collectors)
        self._runner = None

    async def start(self) -> None:
        from aiohttp import web

        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        if self.port == 0:
            self.port = self._runner.addresses[0][1]
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, request):
        from aiohttp import web

        body = generate_latest(self.exposed)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def serving(listen: tuple[str, int] | None, main: Callable[[asyncio.Event], Awaitable[None]],
            *collectors) -> Callable[[asyncio.Event], Awaitable[None]]:
    """`main` with `/metrics` served on `listen` while it runs (None: `main` itself)."""
    if listen is None:
        return main

    async def with_metrics(stop: asyncio.Event) -> None:
        server = MetricsServer(*listen, collectors)
        await server.start()
        try:
            await main(stop)
        finally:
            await server.stop()

    return with_metrics

