"""Processor failover and restart benchmark: how long the `vips` topic goes without new records
when the active processor is killed. Prints JSON.

    .venv/bin/python bench/processor_failover.py [--bootstrap HOST:PORT | --kafka-base-port 47292]
        [--rounds 5] [--apps 50] [--session-timeout-ms 2000]

- failover: two `wayfinder process` run; kill -9 of the active, and at once a task launch
  written into the `tasks` topic; the time from the kill to the first `vips` record that has
  the new backend (published by the standby). A new standby is started for the next round.
- restart: one `wayfinder process`; kill -9 of it, a new one started at once, and a task
  launch; the time from the kill to the first `vips` record with the new backend.

Both include the election's session timeout (a killed member is noticed only when its session
expires), so the report names it. Without --bootstrap the bench starts its own broker, which
accepts sessions down to 1 s; a stock broker needs --session-timeout-ms 6000 or more.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.broker import bench_kafka  # noqa: E402
from runtime.kafka.reader import follow  # noqa: E402
from tests.integration.processor_cluster import (  # noqa: E402
    ProcessorProcesses,
    SourceWriter,
    new_catalog,
    pid_of,
    processor_marks,
    wait_for,
)

WAIT_S = 120.0


class BackendWatch:
    """Follows the vips topic and notes when each backend task first appears (monotonic)."""

    def __init__(self, bootstrap: str, topic: str):
        self.first_seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(bootstrap, topic), daemon=True)
        self._thread.start()

    def _run(self, bootstrap: str, topic: str) -> None:
        for record in follow(bootstrap, topic, from_beginning=True, stop=self._stop):
            if record.value is not None:
                now = time.monotonic()
                for backend in orjson.loads(record.value)["backends"]:
                    self.first_seen.setdefault(backend["task_id"], now)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def active(bootstrap, catalog, among: set[int]) -> int:
    def find():
        marks = processor_marks(bootstrap, catalog)
        return pid_of(marks[-1]) if marks and pid_of(marks[-1]) in among else None

    return wait_for(find, WAIT_S, "an active processor among the running ones", every=0.2)


def kill_and_time(processes: ProcessorProcesses, writer: SourceWriter, watch: BackendWatch, victim: int,
                  restart: bool) -> float:
    """kill -9 `victim` (and start a new processor if `restart`), launch a task; seconds from
    the kill to the first vips record with it."""
    killed_at = time.monotonic()
    processes.signal(victim, signal.SIGKILL)
    if restart:
        processes.start()
    task = writer.launch(0)
    writer.sink.flush()
    seen = wait_for(lambda: watch.first_seen.get(task.id), WAIT_S, f"backend {task.id} in the vips topic", every=0.01)
    return seen - killed_at


def summary(times: list[float]) -> dict:
    return {"min_s": round(min(times), 3), "median_s": round(statistics.median(times), 3),
            "max_s": round(max(times), 3), "rounds_s": [round(t, 3) for t in times]}


def measure(args, bootstrap: str) -> dict:
    logs = Path(tempfile.mkdtemp(prefix="wayfinder-bench-failover-"))
    print(f"processor logs: {logs}", file=sys.stderr)
    results = {}
    for scenario in ("failover", "restart"):
        catalog = new_catalog(bootstrap)
        writer = SourceWriter(bootstrap, catalog, args.apps)
        processes = ProcessorProcesses(bootstrap, catalog, logs / scenario, args.session_timeout_ms)
        (logs / scenario).mkdir()
        watch = BackendWatch(bootstrap, catalog.topic("vips").name)
        try:
            writer.load()
            for _ in range(2 if scenario == "failover" else 1):
                processes.start()
            times = []
            for round in range(args.rounds):
                victim = active(bootstrap, catalog, set(processes.running))
                writer.churn(20)
                time.sleep(1.0)  # standbys rebuilt and caught up
                times.append(kill_and_time(processes, writer, watch, victim, restart=scenario == "restart"))
                print(f"{scenario} round {round + 1}: {times[-1]:.2f}s", file=sys.stderr)
                if scenario == "failover":
                    processes.start()  # the next round has a standby again
            results[scenario] = summary(times)
        finally:
            watch.close()
            processes.stop_all()
            writer.close()
    shutil.rmtree(logs, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", help="an existing Kafka (default: start one for the run)")
    parser.add_argument("--kafka-base-port", type=int, default=47292)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--apps", type=int, default=50, help="apps with a named VIP, two tasks each")
    parser.add_argument("--session-timeout-ms", type=int, default=2000)
    args = parser.parse_args()
    with bench_kafka(args.bootstrap, args.kafka_base_port) as bootstrap:
        results = measure(args, bootstrap)
    print(json.dumps({"session_timeout_ms": args.session_timeout_ms, "rounds": args.rounds, "apps": args.apps,
                      **results}, indent=2))


if __name__ == "__main__":
    main()
