"""runtime/metrics.py and appliers/dns/metrics.py without any process: histograms, samples
rendered as Prometheus text, DNS counters by rcode and transport, and DNS workers' totals."""

from __future__ import annotations

import asyncio
import urllib.request

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from appliers.dns.metrics import KINDS, WorkerTotals, decode_report, dns_samples, encode_report
from appliers.dns.server import Counters
from runtime.metrics import MetricsServer, ProducerClock, Histograms, families, histogram_kinds, sample


def _text(found, kinds) -> dict[str, float]:
    class One:
        def collect(self):
            return families(found, kinds)

    parsed = text_string_to_metric_families(generate_latest(One()).decode())
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in parsed for s in family.samples}


def test_a_histogram_is_cumulative_with_sum_and_count():
    histogram = Histograms("wayfinder_test_seconds", "test", "role", (0.1, 1.0))
    histogram.observe("dns", [0.05, 0.5, 0.5, 7.0])
    histogram.observe("l4lb", [])
    text = _text(histogram.samples(), histogram_kinds(histogram))
    assert text[("wayfinder_test_seconds_bucket", (("le", "0.1"), ("role", "dns")))] == 1
    assert text[("wayfinder_test_seconds_bucket", (("le", "1.0"), ("role", "dns")))] == 3
    assert text[("wayfinder_test_seconds_bucket", (("le", "+Inf"), ("role", "dns")))] == 4
    assert text[("wayfinder_test_seconds_count", (("role", "dns"),))] == 4
    assert text[("wayfinder_test_seconds_sum", (("role", "dns"),))] == 8.05
    assert text[("wayfinder_test_seconds_count", (("role", "l4lb"),))] == 0


def test_dns_replies_are_counted_by_rcode_and_transport():
    class Server:
        counters = Counters()

    noerror, nxdomain = b"\x00\x01\x81\x80", b"\x00\x01\x81\x83"
    Server.counters.count_reply(noerror)
    Server.counters.count_reply(nxdomain)
    Server.counters.count_reply(noerror, tcp=True)
    text = _text(dns_samples(Server, None), KINDS)
    assert text[("wayfinder_dns_queries_total", (("rcode", "NOERROR"), ("transport", "udp")))] == 1
    assert text[("wayfinder_dns_queries_total", (("rcode", "NXDOMAIN"), ("transport", "udp")))] == 1
    assert text[("wayfinder_dns_queries_total", (("rcode", "NOERROR"), ("transport", "tcp")))] == 1
    assert text[("wayfinder_dns_queries_total", (("rcode", "SERVFAIL"), ("transport", "tcp")))] == 0


def test_workers_totals_never_go_back_when_a_worker_restarts():
    key, _ = sample("wayfinder_dns_queries_total", 0, rcode="NOERROR", transport="udp")
    entries = ("wayfinder_dns_cache_entries", ())
    first = decode_report(encode_report({key: 10.0, entries: 5.0}))
    assert first == {key: 10.0, entries: 5.0}
    totals = WorkerTotals()
    assert totals.total([first, {key: 3.0}])[key] == 13.0
    totals.retire(first)  # worker 0 exited; its successor starts from zero
    assert totals.total([{key: 1.0, entries: 2.0}, {key: 3.0}]) == {key: 14.0, entries: 2.0}
    assert decode_report(b"ready") is None and decode_report(b"metrics [oops") is None


def test_the_endpoint_serves_the_registry_and_the_commands_collectors():
    clock = ProducerClock(clock=lambda: 100.0)
    clock.last_contact["mesos"] = 70.0

    async def scrape() -> str:
        server = MetricsServer("127.0.0.1", 0, [clock])
        await server.start()
        try:
            url = f"http://127.0.0.1:{server.port}/metrics"
            return await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read().decode())
        finally:
            await server.stop()

    text = asyncio.run(scrape())
    assert 'wayfinder_producer_seconds_since_last_contact{source="mesos"} 30.0' in text
    assert "process_cpu_seconds_total" in text
