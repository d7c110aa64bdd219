"""The DNS role's metrics: what the server, the forwarder and its cache count anyway, as
Prometheus samples built at scrape time (runtime/metrics.py says why not per query).

With `--dns-workers N` every worker process counts its own queries. Each worker writes its
samples as one `metrics <json>` line on its report pipe every `REPORT_S`
(appliers/dns/worker_process.py), and the node's process adds them up (`WorkerTotals`): the
node's one `/metrics` shows the node, not N separate endpoints, and nothing needs
prometheus_client's multiprocess mode (a directory of mmapped files, set up before any
import, that cannot carry the collectors read at scrape time). A worker that exits leaves
its last counters behind, so totals never go backwards when it restarts; what it counted
after its last report (at most `REPORT_S`) is lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec

from runtime.metrics import SampleKey, Samples, add_samples, sample

REPORT_S = 1.0
METRICS_PREFIX = b"metrics "

RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}

# family -> (type, help); counters without `_total`
KINDS: dict[str, tuple[str, str]] = {
    "wayfinder_dns_queries": ("counter", "DNS replies sent, by rcode and transport (udp, tcp)."),
    "wayfinder_dns_dropped_queries": ("counter", "DNS queries not answered: not a query, or the reply could not be sent."),
    "wayfinder_dns_truncated_replies": ("counter", "DNS replies sent with TC=1 (the client retries over TCP)."),
    "wayfinder_dns_tcp_connections": ("counter", "DNS TCP connections accepted."),
    "wayfinder_dns_tcp_closed": ("counter", "DNS TCP connections closed by the server, by why: refused (over the "
                                 "limits), evicted (to make room), timeout (idle or slow)."),
    "wayfinder_dns_forwarded": ("counter", "Queries for outside names handed to the forwarder."),
    "wayfinder_dns_cache_hits": ("counter", "Forwarded queries answered from the reply cache."),
    "wayfinder_dns_cache_misses": ("counter", "Forwarded queries the reply cache could not answer."),
    "wayfinder_dns_cache_evictions": ("counter", "Reply cache entries dropped to stay within its capacity."),
    "wayfinder_dns_cache_entries": ("gauge", "Replies held in the cache."),
    "wayfinder_dns_forward_results": ("counter", "Forwarded queries that got no upstream answer: servfail (nobody "
                                      "answered in time), no_route (no upstream for the name), coalesced (joined an "
                                      "identical query in flight)."),
    "wayfinder_dns_upstream_queries": ("counter", "Queries sent to each upstream, by outcome: answered, error "
                                       "(SERVFAIL or REFUSED), failed (timeout, connection, malformed)."),
    "wayfinder_dns_upstream_mismatched_replies": ("counter", "Upstream replies dropped: wrong source, id or question."),
}
GAUGES = frozenset({"wayfinder_dns_cache_entries"})


def dns_samples(server, forwarder) -> Samples:
    """The samples of one process's DNS server (None before it listens) and forwarder."""
    found: Samples = {}
    if server is not None:
        counters = server.counters
        for transport, by_rcode in (("udp", counters.udp_rcodes), ("tcp", counters.tcp_rcodes)):
            for code, count in enumerate(by_rcode):
                if count or code in (0, 2, 3):  # the usual three always exist, so rate() has a series
                    key, value = sample("wayfinder_dns_queries_total", count, rcode=RCODES.get(code, str(code)),
                                        transport=transport)
                    found[key] = value
        for name, value in (("wayfinder_dns_dropped_queries_total", counters.dropped),
                            ("wayfinder_dns_truncated_replies_total", counters.truncated),
                            ("wayfinder_dns_tcp_connections_total", counters.tcp_connections)):
            found[(name, ())] = value
        for why, value in (("refused", counters.tcp_refused), ("evicted", counters.tcp_evicted),
                           ("timeout", counters.tcp_timeouts)):
            found[sample("wayfinder_dns_tcp_closed_total", value, why=why)[0]] = value
    if forwarder is not None:
        counters, cache = forwarder.counters, forwarder.cache
        found[("wayfinder_dns_forwarded_total", ())] = counters.forwarded
        found[("wayfinder_dns_cache_hits_total", ())] = cache.hits
        found[("wayfinder_dns_cache_misses_total", ())] = cache.misses
        found[("wayfinder_dns_cache_evictions_total", ())] = cache.evicted
        found[("wayfinder_dns_cache_entries", ())] = len(cache)
        found[("wayfinder_dns_upstream_mismatched_replies_total", ())] = counters.mismatched
        for result, value in (("servfail", counters.servfail), ("no_route", counters.no_route),
                              ("coalesced", counters.coalesced)):
            found[sample("wayfinder_dns_forward_results_total", value, result=result)[0]] = value
        for (upstream, outcome), value in list(counters.by_upstream.items()):
            found[sample("wayfinder_dns_upstream_queries_total", value, upstream=upstream, outcome=outcome)[0]] = value
    return found


def encode_report(found: Mapping[SampleKey, float]) -> bytes:
    """One report line (without the newline)."""
    return METRICS_PREFIX + msgspec.json.encode([[name, list(labels), value] for (name, labels), value in found.items()])


def decode_report(line: bytes) -> Samples | None:
    """A report line's samples; None when the line is not one (or is damaged)."""
    if not line.startswith(METRICS_PREFIX):
        return None
    try:
        rows = msgspec.json.decode(line[len(METRICS_PREFIX):], type=list[tuple[str, list[tuple[str, str]], float]])
    except (msgspec.DecodeError, msgspec.ValidationError):  # DecodeError covers both; said for the reader
        return None
    return {(name, tuple(tuple(pair) for pair in labels)): value for name, labels, value in rows}


class WorkerTotals:
    """The node's sum of its DNS workers' samples, kept monotonic across restarts."""

    def __init__(self, gauges: Iterable[str] = GAUGES) -> None:
        self.gauges = frozenset(gauges)
        self.retired: Samples = {}  # the counters of workers that exited, as last reported

    def retire(self, last: Mapping[SampleKey, float]) -> None:
        add_samples(self.retired, {key: value for key, value in last.items() if key[0] not in self.gauges})

    def total(self, live: Iterable[Mapping[SampleKey, float]]) -> Samples:
        found = dict(self.retired)
        for samples in live:
            add_samples(found, samples)
        return found
