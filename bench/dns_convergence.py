"""DNS convergence benchmark: from the simulator's change stamp to a task's names being served
(or gone) by a node's DNS server, with N running tasks and churn at a fixed rate. Prints JSON.

    .venv/bin/python bench/dns_convergence.py [--bootstrap HOST:PORT] [--tasks 10000] [--rate 100] [--seconds 20]

Simulator, producer and processor run as their own processes; the node's dns role runs here.
The cluster is loaded first, and the node starts once the dns topic holds every task and has
been quiet for 3 s (the processor has finished the initial load), so the churn is measured on
a node that caught up on the whole table. --rate counts task state changes (rate / 2 launches
and kills a second, two states each); the bench waits for the churn to end however late it
runs, then for the node to drain, and `churn` in the report says what the simulator really did
(the achieved rate, and `kept_up` false when it fell behind). A launch counts when the first
record set naming the task is in the node's zones (the server answers from them at once); a
kill when the last one is gone. A sample of names is also asked over UDP at the end, to show
the zones and the wire agree.
"""

from __future__ import annotations

import argparse
import contextlib
import asyncio
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import dns.asyncquery
import dns.message
import dns.rcode
import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from appliers.node import Node  # noqa: E402
from runtime.reconcile import ReconcileLoop  # noqa: E402
from appliers.options import NodeOptions  # noqa: E402
from runtime.kafka.reader import read_table  # noqa: E402
from runtime.kafka.topics import ensure_topics  # noqa: E402
from schemas.catalog import Catalog  # noqa: E402
from schemas.headers import RecordMeta  # noqa: E402

from bench.pipeline import (  # noqa: E402
    CpuMeter, Processes, TopicSizes, churn_figures, rounded, drain, goal, measured_changes, producer_observed, run_churn)
from bench.broker import bench_kafka  # noqa: E402
from bench.producer_latency import free_port, percentile, wait_http  # noqa: E402

AGENTS, PER_APP = 50, 3


def marathon_document(tasks: int) -> dict:
    """Running apps of PER_APP tasks each, spread over AGENTS hosts, one named port each."""
    apps = []
    for i in range((tasks + PER_APP - 1) // PER_APP):
        app_tasks = []
        for n in range(PER_APP):
            slot = i * PER_APP + n
            host = f"10.202.{slot % AGENTS}.1"
            app_tasks.append({"id": f"app{i}.{i:06d}-{n}", "appId": f"/app{i}", "host": host,
                              "slaveId": f"bench-agent-{slot % AGENTS}", "ports": [20000 + i % 10000],
                              "ipAddresses": [{"ipAddress": host, "protocol": "IPv4"}], "state": "TASK_RUNNING",
                              "version": "2026-11-26T00:00:00.000Z"})
        apps.append({"id": f"/app{i}", "instances": PER_APP, "tasks": app_tasks,
                     "portDefinitions": [{"port": 0, "protocol": "tcp", "name": "http"}]})
    return {"apps": apps}


def tasks_in(value: bytes | None) -> set[str]:
    return set(orjson.loads(value)["tasks"]) if value else set()


class Presence:
    """Which tasks have at least one record set in the node, and when each came or went."""

    def __init__(self, table: dict[str, bytes]):
        self.by_key = {key: tasks_in(value) for key, value in table.items()}
        self.count = Counter(task for tasks in self.by_key.values() for task in tasks)
        self.changed: dict[tuple[str, bool], float] = {}  # (task id, present?) -> when
        self.to_processor_ms: list[float] = []  # producer observed -> processor wrote the set
        self.to_node_ms: list[float] = []  # processor wrote the set -> in the node's zones
        self.batches: list[tuple[float, int, float]] = []  # (applied at, records, oldest write)

    def on_applied(self, records, at: float) -> None:
        self.batches.append((at, len(records), min(r.timestamp_ms for r in records) / 1000))
        for record in records:
            meta = RecordMeta.from_headers(record.headers)
            if meta:
                self.to_processor_ms.append(record.timestamp_ms - meta.observed_ns / 1e6)
                self.to_node_ms.append(at * 1000 - record.timestamp_ms)
            now = tasks_in(record.value)
            before = self.by_key.get(record.key, set())
            for task in now - before:
                self.count[task] += 1
                if self.count[task] == 1:
                    self.changed.setdefault((task, True), at)
            for task in before - now:
                self.count[task] -= 1
                if self.count[task] == 0:
                    del self.count[task]
                    self.changed.setdefault((task, False), at)
            self.by_key[record.key] = now


async def wait_for_tasks(bootstrap: str, topic: str, tasks: int, timeout: float) -> dict[str, bytes]:
    deadline = time.monotonic() + timeout
    while True:
        table = await asyncio.to_thread(read_table, bootstrap, topic)
        named = {task for value in table.values() for task in tasks_in(value)}
        if len(named) >= tasks:
            return table
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(named)} of {tasks} tasks reached the dns topic")
        await asyncio.sleep(1.0)


async def settle(bootstrap: str, topic: str, quiet_s: float, timeout: float) -> float:
    """Wait until nothing has been written to `topic` for `quiet_s`: the processor has
    finished the initial load. Returns how long that took."""
    sizes = TopicSizes(bootstrap)
    started = time.monotonic()
    try:
        last, since = await asyncio.to_thread(sizes.size, topic), time.monotonic()
        while time.monotonic() - since < quiet_s:
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"{topic} was still being written after {timeout:.0f}s")
            await asyncio.sleep(0.5)
            now = await asyncio.to_thread(sizes.size, topic)
            if now != last:
                last, since = now, time.monotonic()
    finally:
        sizes.close()
    return time.monotonic() - started


async def measure(args, bootstrap: str) -> dict:
    catalog = Catalog(f"bench{secrets.token_hex(4)}")
    ensure_topics(bootstrap, catalog)
    workdir = Path(tempfile.mkdtemp(prefix="wayfinder-bench-"))
    apps = workdir / "apps.json"
    apps.write_bytes(orjson.dumps(marathon_document(args.tasks)))
    mesos, marathon = free_port(), free_port()
    marathon_url = f"http://127.0.0.1:{marathon}"
    processes = Processes(workdir)
    processes.spawn("simulator", "simulate", "--mesos-listen", f"127.0.0.1:{mesos}", "--marathon-listen",
                    f"127.0.0.1:{marathon}", "--marathon-apps", str(apps))
    stop = asyncio.Event()
    try:
        await asyncio.to_thread(wait_http, f"{marathon_url}/ping", 120)
        started = time.monotonic()
        processes.spawn("producer", "produce", "--bootstrap", bootstrap, "--namespace", catalog.namespace,
                        "--mesos", f"http://127.0.0.1:{mesos}", "--marathon", marathon_url)
        processes.spawn("processor", "process", "--bootstrap", bootstrap, "--namespace", catalog.namespace)
        await wait_for_tasks(bootstrap, catalog.topic("dns").name, args.tasks, 600)
        await settle(bootstrap, catalog.topic("dns").name, 3.0, 300)
        table = await asyncio.to_thread(read_table, bootstrap, catalog.topic("dns").name)
        loaded = time.monotonic() - started
        presence = Presence(table)
        running = Node(NodeOptions(bootstrap, catalog, "bench", "10.202.0.1", roles=("dns",),
                                   dns_listen=("127.0.0.1", free_port())))
        role = running.dns
        role.on_applied = presence.on_applied
        node = asyncio.create_task(running.run(stop))
        node_started = time.monotonic()
        await asyncio.wait_for(role.caught_up.wait(), 600)
        caught_up = time.monotonic() - node_started
        cpu = CpuMeter(processes, bootstrap)
        cpu.start()
        report = await run_churn(marathon_url, args.rate, args.seconds, processes)
        churn_cpu = cpu.stop()
        wanted = measured_changes(report, {"TASK_RUNNING": True, "TASK_KILLED": False})
        drained_s = await drain(lambda: sum(change not in presence.changed for change in wanted), processes)
        observed = await asyncio.to_thread(producer_observed, bootstrap, catalog, report["posted_at"])
        # The server answers once the role is ready: a ready processor mark in the status topic.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(role.ready.wait(), 30)
        wire = await ask_sample(role, presence)
        stop.set()
        await asyncio.wait_for(node, 60)
    finally:
        stop.set()
        processes.stop()
    shutil.rmtree(workdir)  # kept only when the run failed, for its logs
    latencies, missing, windows = [], 0, {}
    first = min((c["at"] for c in report["changes"]), default=0.0)
    for change in report["changes"]:
        if change["kind"] != "task_state" or change["state"] not in ("TASK_RUNNING", "TASK_KILLED"):
            continue
        at = presence.changed.get((change["task_id"], change["state"] == "TASK_RUNNING"))
        if at is None:
            missing += 1
        else:
            latencies.append((at - change["at"]) * 1000)
            windows.setdefault(int((change["at"] - first) // 5) * 5, []).append(latencies[-1])
    convergence = [s * 1000 for s in role.convergence_s]
    churn = churn_figures(report, args.rate, args.seconds, drained_s, observed)
    return {
        "benchmark": "dns convergence",
        "goal": goal(args.rate, "p99 <= 100 ms at 100 changes/s with 10,000 running tasks"),
        "tasks": args.tasks,
        "rate_changes_per_second": args.rate,
        "achieved_task_state_changes_per_second": churn["achieved_task_state_changes_per_second"],
        "churn": churn,
        "load_to_dns_topic_s": round(loaded, 2),
        "node_catch_up_s": round(caught_up, 2),
        "record_sets_at_start": len(table),
        "measured_changes": len(latencies),
        "missing": missing,
        "latency_ms": {"p50": rounded(percentile(latencies, 50)), "p99": rounded(percentile(latencies, 99)),
                       "max": rounded(max(latencies) if latencies else None)},
        "p99_ms_by_5s_window": {f"{start}s": rounded(percentile(values, 99)) for start, values in sorted(windows.items())},
        "node_convergence_from_producer_ms": {"p50": rounded(percentile(convergence, 50)),
                                              "p99": rounded(percentile(convergence, 99))},
        "split_ms": {"producer_to_processor_write": {"p50": rounded(percentile(presence.to_processor_ms, 50)),
                                                     "p99": rounded(percentile(presence.to_processor_ms, 99))},
                     "processor_write_to_node": {"p50": rounded(percentile(presence.to_node_ms, 50)),
                                                 "p99": rounded(percentile(presence.to_node_ms, 99))}},
        "wire_sample": wire,
        "cpu_during_churn": churn_cpu,
        "first_batches": [(round(at - first, 3), n, round((at - oldest) * 1000, 1)) for at, n, oldest in presence.batches[:15]],
    }


async def ask_sample(role: ReconcileLoop, presence: Presence, size: int = 200) -> dict:
    """Ask the server for the A names of present record sets: every one must answer."""
    host, port = role.role.server.address[:2]
    names = [key.rsplit("/", 1)[0] for key, tasks in presence.by_key.items() if tasks and key.endswith("/A")][:size]
    answered = 0
    for name in names:
        reply = await dns.asyncquery.udp(dns.message.make_query(name, "A"), host, port=port, timeout=2)
        answered += reply.rcode() == dns.rcode.NOERROR and bool(reply.answer)
    return {"asked": len(names), "answered": answered, "ready": role.ready.is_set()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default=os.environ.get("WAYFINDER_BOOTSTRAP"))
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=100.0,
                        help="task state changes per second (rate/2 launches and kills a second; at most 20,000)")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with bench_kafka(args.bootstrap, base_port=47392) as bootstrap:
        print(json.dumps(asyncio.run(measure(args, bootstrap)), indent=2))


if __name__ == "__main__":
    main()
