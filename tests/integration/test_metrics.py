"""`--metrics-listen`, scraped by a real Prometheus (Debian's `prometheus` package).

The pipeline runs as processes (tests/chaos/stack.py): simulator, producer, one processor and
a node with the dns role, each of the last three serving /metrics on a port of its own.
Prometheus scrapes them every second; the test asks Prometheus's HTTP API for the series and
their values, after it made something happen: an app launched after the node was ready
(convergence), a malformed Mesos event (a rejection), DNS queries over UDP and TCP.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

import dns.message
import dns.query
import dns.rcode
import pytest

from runtime.ports import free_port
from tests.chaos.stack import Stack
from tests.scenarios.mesos_fixtures import FIXTURES

pytestmark = pytest.mark.kafka

PROMETHEUS = shutil.which("prometheus")
STATE = FIXTURES / "mesos-state" / "state1.json"
DEADLINE_S = 120.0  # the whole wait for every expectation


def _frame(data: bytes) -> bytes:
    return str(len(data)).encode() + b"\n" + data


def _post_raw(stack: Stack, path: str, body: bytes) -> None:
    """A fault for the simulator's streams: these bytes as they are (no JSON)."""
    request = urllib.request.Request(f"http://127.0.0.1:{stack.marathon_port}{path}", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert json.loads(reply.read())["streams"] >= 1


class Prometheus:
    def __init__(self, workdir, targets: dict[str, int]) -> None:
        self.port = free_port()
        self.data = workdir / "prometheus-data"
        config = workdir / "prometheus.yml"
        jobs = [{"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
                for job, port in targets.items()]
        config.write_text(json.dumps({"global": {"scrape_interval": "1s", "scrape_timeout": "900ms"},
                                      "scrape_configs": jobs}))  # JSON is YAML
        self.log = open(workdir / "prometheus.log", "wb")
        self.popen = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={self.data}",
             f"--web.listen-address=127.0.0.1:{self.port}"], stdout=self.log, stderr=subprocess.STDOUT)

    def query(self, expression: str) -> list[dict]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
        with urllib.request.urlopen(url, timeout=5) as reply:
            body = json.loads(reply.read())
        assert body["status"] == "success", body
        return body["data"]["result"]

    def value(self, expression: str) -> float | None:
        """The one value of a scalar-like query; None when it has no series (yet)."""
        try:
            found = self.query(expression)
        except OSError:
            return None
        return float(found[0]["value"][1]) if found else None

    def stop(self) -> None:
        self.popen.terminate()
        try:
            self.popen.wait(15)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(10)
        self.log.close()
        shutil.rmtree(self.data, ignore_errors=True)


def _ask(port: int, name: str, tcp: bool = False) -> int:
    query = dns.message.make_query(name, "A")
    ask = dns.query.tcp if tcp else dns.query.udp
    return ask(query, "127.0.0.1", port=port, timeout=2).rcode()


@pytest.mark.skipif(PROMETHEUS is None, reason="needs Debian's prometheus package (make installs it)")
def test_a_real_prometheus_scrapes_every_stage(kafka_bootstrap, tmp_path):
    stack = Stack(kafka_bootstrap, tmp_path, STATE, processors=1)
    ports = {"producer": free_port(), "processor-1": free_port(), "node": free_port()}
    for name, port in ports.items():
        stack[name].args += ["--metrics-listen", f"127.0.0.1:{port}"]
    prometheus = Prometheus(tmp_path, ports)
    try:
        stack.start()
        stack.await_simulator()
        ready = 'wayfinder_role_ready{role="dns"}'
        _until(prometheus, ready, lambda v: v == 1.0, stack)

        # After the node is ready: a change it measures from the producer's observation on.
        stack.control("POST", "/sim/apps", {"id": "/metrics-probe", "instances": 2, "portDefinitions": [{"port": 0}]})
        _post_raw(stack, "/sim/faults/mesos-stream", _frame(b'{"type": "TASK_ADDED", "task_added": '))
        for _ in range(5):
            assert _ask(stack.dns_port, "ready.spartan.") == dns.rcode.NOERROR
            assert _ask(stack.dns_port, "no-such-app.marathon.mesos.") == dns.rcode.NXDOMAIN
        assert _ask(stack.dns_port, "ready.spartan.", tcp=True) == dns.rcode.NOERROR

        expectations = {
            'count(up == 1)': lambda v: v == 3.0,
            'wayfinder_node_convergence_seconds_count{role="dns"}': lambda v: v > 0,
            'histogram_quantile(0.99, rate(wayfinder_node_convergence_seconds_bucket{role="dns"}[1m]))':
                lambda v: 0 <= v < 60,
            'wayfinder_rejections_total{source="mesos"}': lambda v: v >= 1,
            'wayfinder_dns_queries_total{rcode="NOERROR",transport="udp"}': lambda v: v >= 5,
            'wayfinder_dns_queries_total{rcode="NXDOMAIN",transport="udp"}': lambda v: v >= 5,
            'wayfinder_dns_queries_total{rcode="NOERROR",transport="tcp"}': lambda v: v >= 1,
            'max(wayfinder_processor_lag_records)': lambda v: v == 0,
            'sum(wayfinder_processor_consumed_records_total)': lambda v: v > 0,
            'sum(wayfinder_processor_published_records_total)': lambda v: v > 0,
            'wayfinder_processor_active{job="processor-1"}': lambda v: v == 1,
            'count(wayfinder_processor_active)': lambda v: v == 1,  # the producer and node do not export it
            'sum(wayfinder_producer_events_total)': lambda v: v > 0,
            'wayfinder_producer_seconds_since_last_contact{source="mesos"}': lambda v: 0 <= v < 60,
            'wayfinder_producer_seconds_since_last_contact{source="marathon"}': lambda v: 0 <= v < 200,
            'wayfinder_role_passes_total{role="dns"}': lambda v: v >= 1,
            'wayfinder_role_apply_seconds_count{role="dns"}': lambda v: v >= 1,
        }
        for expression, sane in expectations.items():
            _until(prometheus, expression, sane, stack)
    finally:
        prometheus.stop()
        stack.close()
    assert not prometheus.data.exists()


def _until(prometheus: Prometheus, expression: str, sane, stack: Stack, timeout: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = prometheus.value(expression)
        if value is not None and sane(value):
            return
        time.sleep(0.5)
    raise AssertionError(f"{expression} = {value} after {timeout:.0f}s\n{stack.logs()}")
