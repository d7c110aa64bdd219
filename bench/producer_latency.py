"""Producer benchmark: changes per second and latency from the simulator's change stamp to the
record being readable in Kafka. Prints JSON. Not a test: the machines are shared and noisy.

    .venv/bin/python bench/producer_latency.py [--bootstrap HOST:PORT] [--seconds 10] [--rates 100,2000]

The simulator and the producer run as their own processes (as in production); this process
drives churn through the control API and consumes the events topic. A change is one task
state transition the simulator stamps (a launch is STAGING and RUNNING, a kill KILLING and
KILLED); its latency ends when the matching history record reaches this consumer.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import orjson
from confluent_kafka import OFFSET_END, Consumer, TopicPartition

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from producers.history import KIND_BY_TASK_STATE  # noqa: E402
from bench.broker import bench_kafka  # noqa: E402
from runtime.kafka.topics import ensure_topics  # noqa: E402
from schemas.catalog import Catalog  # noqa: E402
from runtime.ports import free_port

WAYFINDER = str(Path(sys.executable).with_name("wayfinder"))
FIXTURE = REPO / "runtime" / "demo" / "operator-api.json"


def http(method: str, url: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(url, method=method, data=orjson.dumps(body) if body is not None else None)
    with urllib.request.urlopen(request, timeout=30) as response:
        return orjson.loads(response.read())


def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class EventCollector(threading.Thread):
    """Receive times of history records, keyed by (task id, kind)."""

    def __init__(self, bootstrap: str, topic: str):
        super().__init__(daemon=True)
        self.seen: dict[tuple[str, str], tuple[float, float]] = {}  # -> (received, producer observed)
        self.count = 0
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex}",
                                  "enable.auto.commit": False, "fetch.wait.max.ms": 5, "fetch.min.bytes": 1})
        partitions = self.consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self.consumer.assign([TopicPartition(topic, p, OFFSET_END) for p in partitions])

    def run(self) -> None:
        while not self.stop.is_set():
            # poll() returns as soon as one record is there; consume(n, t) would wait for n or t.
            message = self.consumer.poll(0.05)
            self.ready.set()
            if message is not None:
                if message.error() or message.value() is None:
                    continue
                now = time.time()
                value = orjson.loads(message.value())
                if value.get("source") == "mesos":
                    observed = int(dict(message.headers())["wf-observed-ns"]) / 1e9
                    self.seen.setdefault((value["id"], value["kind"]), (now, observed))
                self.count += 1
        self.consumer.close()


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def _round(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


def run_rate(bootstrap: str, marathon_url: str, catalog: Catalog, rate: float, seconds: float) -> dict:
    collector = EventCollector(bootstrap, catalog.topic("events").name)
    collector.start()
    collector.ready.wait(10)
    started = time.time()
    # A churn operation is a launch or a kill: two task state changes each.
    churn = http("POST", f"{marathon_url}/sim/churn", {"rate": rate / 2, "seconds": seconds})
    time.sleep(seconds + 0.5)
    report = http("GET", f"{marathon_url}/sim/churn/{churn['id']}")
    time.sleep(2.0)  # let the last records arrive
    collector.stop.set()
    collector.join(5)
    changes = [c for c in report["changes"] if c["kind"] == "task_state"]
    latencies, to_producer, missing = [], [], 0
    for change in changes:
        seen = collector.seen.get((change["task_id"], KIND_BY_TASK_STATE.get(change["state"], "")))
        if seen is None:
            missing += 1
        else:
            latencies.append((seen[0] - change["at"]) * 1000)
            to_producer.append((seen[1] - change["at"]) * 1000)
    elapsed = max(c["at"] for c in changes) - min(c["at"] for c in changes) if len(changes) > 1 else seconds
    return {
        "target_changes_per_second": rate,
        "achieved_changes_per_second": round(len(changes) / elapsed, 1) if elapsed else None,
        "changes": len(changes),
        "records_per_second": round(collector.count / (time.time() - started - 2.0), 1),
        "latency_ms": {
            "p50": _round(percentile(latencies, 50)),
            "p99": _round(percentile(latencies, 99)),
            "max": _round(max(latencies) if latencies else None),
        },
        # where the time goes: simulator stamp -> the producer observing the event
        "to_producer_ms": {"p50": _round(percentile(to_producer, 50)), "p99": _round(percentile(to_producer, 99))},
        "missing": missing,
        "churn_error": report.get("error"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default=os.environ.get("WAYFINDER_BOOTSTRAP"))
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rates", default="100,2000")
    args = parser.parse_args()

    with bench_kafka(args.bootstrap, base_port=47092) as bootstrap:
        run_all(args, bootstrap)


def run_all(args, bootstrap: str) -> None:
    catalog = Catalog(f"bench{uuid.uuid4().hex[:8]}")
    ensure_topics(bootstrap, catalog)
    mesos_port, marathon_port = free_port(), free_port()
    marathon_url = f"http://127.0.0.1:{marathon_port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    simulator = subprocess.Popen([WAYFINDER, "--log-level", "warning", "simulate", "--mesos-listen", f"127.0.0.1:{mesos_port}",
                                  "--marathon-listen", f"127.0.0.1:{marathon_port}", "--mesos-state", str(FIXTURE)], **quiet)
    producer = None
    try:
        wait_http(f"{marathon_url}/v2/apps")
        producer = subprocess.Popen([WAYFINDER, "--log-level", "warning", "produce", "--bootstrap", bootstrap,
                                     "--namespace", catalog.namespace, "--mesos", f"http://127.0.0.1:{mesos_port}",
                                     "--marathon", marathon_url], **quiet)
        time.sleep(3.0)  # the producer reads the (empty) tables and publishes the first snapshot
        results = [run_rate(bootstrap, marathon_url, catalog, float(rate), args.seconds) for rate in args.rates.split(",")]
        print(json.dumps({"benchmark": "producer", "goal": "p99 <= 20 ms at 100 changes/s", "runs": results}, indent=2))
    finally:
        for process in (producer, simulator):
            if process:
                process.terminate()
                process.wait(20)


if __name__ == "__main__":
    main()
