"""L4 convergence benchmark: from the simulator's change stamp to the backend being present (or
gone) in a node's kernel, with N VIPs x 3 backends loaded and churn at a fixed rate. Prints JSON.

    sudo .venv/bin/python bench/l4lb_convergence.py [--bootstrap HOST:PORT | --kafka-base-port 47192]
        [--vips 10000] [--rate 100] [--seconds 20] [--port-base PORT] [--netns-prefix wf-bench-]

Without --bootstrap it starts its own broker with full-speed JVM flags (the test suite's
broker runs with C1 only and the serial GC, which favours start-up over throughput).

Simulator, producer and processor run as their own processes (their logs go to a temporary
directory, named on stderr and removed after a successful run); the node's l4lb role runs here, programming nftables inside a
network namespace this script creates and removes.

Loading: the clock starts when the producer and the processor start, with the simulator
already holding N apps. While it loads, a line per 2 s on stderr shows each stage (records in
the tasks topic, in the vips topic, VIPs in the kernel), and the report gives the time each
stage completed: the tasks topic holds all 3N tasks; the vips topic holds N records (a
processor that meets the tasks one by one publishes a VIP again as each backend joins, ~3N
records in all, so this is not yet the end of its work); the node caught up on the vips topic
(at once: it starts with the others); the kernel holds all N VIPs.

Churn: the simulator launches and kills tasks at --rate task state changes per second (rate / 2
operations a second: a launch is TASK_STAGING then TASK_RUNNING, a kill TASK_KILLING then
TASK_KILLED). The bench waits for the churn to end however late it runs (stopping it only past
twice its duration), then for the pipeline to drain, and reports under `churn` what the
simulator really did: operations done, the span they took and the achieved rate, with
`kept_up` false when the simulator fell behind the asked pace (the latencies are then those of
a lower rate). A change is
measured from the simulator's own stamp on it (`at`, its wall clock when the model changed:
the real beginning of the pipeline, before the producer has seen anything) to the sync that
put it in the kernel (`ApplyRecord.at`, same host, same clock). A launch counts when its
backend is in the kernel with weight > 0; a kill counts from TASK_KILLING (which already
drains the backend to weight 0: that is the change the kernel acts on) until the backend has
no slot any more. The node also reports its own convergence from the producer's
`wf-observed-ns` header, which leaves out the simulator-to-producer hop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from appliers.node import Node, NodeOptions  # noqa: E402
from runtime.reconcile import ReconcileLoop  # noqa: E402
from bench.broker import bench_kafka  # noqa: E402
from runtime.kafka.reader import read_table  # noqa: E402
from runtime.kafka.topics import ensure_topics  # noqa: E402
from schemas.catalog import Catalog  # noqa: E402
from schemas.headers import RecordMeta  # noqa: E402

from bench.producer_latency import free_port, percentile, wait_http  # noqa: E402
from bench.pipeline import (  # noqa: E402
    CpuMeter, Processes, TopicSizes, rounded, churn_figures, drain, goal, measured_changes,
    producer_observed, run_churn, say)

AGENTS = 50
LOAD_TIMEOUT = 600.0
PROGRESS_EVERY = 2.0


def marathon_document(vips: int) -> dict:
    """N apps, one named VIP each, 3 running tasks each, spread over AGENTS hosts."""
    apps = []
    for i in range(vips):
        tasks = []
        for n in range(3):
            host = f"10.201.{(i * 3 + n) % AGENTS}.1"
            tasks.append({"id": f"bench_app{i}.{i:06d}-{n}", "appId": f"/bench/app{i}", "host": host,
                          "slaveId": f"bench-agent-{(i * 3 + n) % AGENTS}", "ports": [20000 + i % 10000],
                          "ipAddresses": [{"ipAddress": host, "protocol": "IPv4"}], "state": "TASK_RUNNING",
                          "version": "2026-11-26T00:00:00.000Z"})
        apps.append({"id": f"/bench/app{i}", "instances": 3, "tasks": tasks,
                     "portDefinitions": [{"port": 0, "protocol": "tcp", "labels": {"VIP_0": f"/bench/app{i}:80"}}]})
    return {"apps": apps}


def weighted_tasks(value: bytes | None) -> set[str]:
    """Task ids of the backends a VIP record puts in the kernel (weight > 0)."""
    return {b["task_id"] for b in orjson.loads(value)["backends"] if b["weight"] > 0} if value else set()


async def load(args, role: ReconcileLoop, processes: Processes, sizes: TopicSizes, catalog: Catalog, started: float) -> dict:
    """Wait until the kernel holds every VIP; returns when each stage completed (s from start)."""
    tasks_topic, vips_topic = catalog.topic("tasks").name, catalog.topic("vips").name
    stages: dict[str, float] = {}
    deadline = started + LOAD_TIMEOUT
    while True:
        processes.check()
        elapsed = time.monotonic() - started
        tasks, vips = await asyncio.to_thread(sizes.size, tasks_topic), await asyncio.to_thread(sizes.size, vips_topic)
        in_kernel = len(role.role.applier.applied_at)
        for stage, done in (("tasks_published_s", tasks >= 3 * args.vips), ("vips_topic_n_records_s", vips >= args.vips),
                            ("node_caught_up_s", role.caught_up.is_set()), ("all_vips_in_kernel_s", in_kernel >= args.vips)):
            if done and stage not in stages:
                stages[stage] = round(elapsed, 2)
        say(f"{elapsed:6.1f}s  tasks topic {tasks:7d}  vips topic {vips:7d}  kernel {in_kernel:6d} VIPs"
            f"{'  (node caught up)' if role.caught_up.is_set() else ''}")
        if in_kernel >= args.vips:
            return stages
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {in_kernel} of {args.vips} VIPs reached the kernel in {LOAD_TIMEOUT:.0f}s "
                               f"(stages done: {stages}; logs in {processes.logs})")
        await asyncio.sleep(PROGRESS_EVERY)


async def measure(args, bootstrap: str, netns: str) -> dict:
    catalog = Catalog(f"bench{secrets.token_hex(4)}")
    ensure_topics(bootstrap, catalog)
    workdir = Path(tempfile.mkdtemp(prefix="wayfinder-bench-"))
    say(f"logs and the apps document: {workdir}")
    apps = workdir / "apps.json"
    apps.write_bytes(orjson.dumps(marathon_document(args.vips)))
    mesos, marathon = (args.port_base, args.port_base + 1) if args.port_base else (free_port(), free_port())
    marathon_url = f"http://127.0.0.1:{marathon}"
    processes = Processes(workdir)
    processes.spawn("simulator", "simulate", "--mesos-listen", f"127.0.0.1:{mesos}", "--marathon-listen",
                    f"127.0.0.1:{marathon}", "--marathon-apps", str(apps))
    # (task id, present?) -> when the kernel first had it so; kept only during churn.
    applied: dict[tuple[str, bool], float] = {}
    known: dict[str, set[str]] = {}  # VIP key -> task ids of its weighted backends, as the kernel has them
    measuring = False

    # Where the time goes, per applied record: producer observed -> processor wrote the VIP
    # record (its Kafka timestamp, set by the processor's client) -> node's kernel had it.
    hops: dict[str, list[float]] = {"to_processor_write": [], "processor_write_to_kernel": []}

    def on_applied(records, at: float) -> None:
        if not measuring:
            return
        for record in records:
            meta = RecordMeta.from_headers(record.headers)
            if meta:
                hops["to_processor_write"].append(record.timestamp_ms - meta.observed_ns / 1e6)
                hops["processor_write_to_kernel"].append(at * 1000 - record.timestamp_ms)
            now, before = weighted_tasks(record.value), known.get(record.key, set())
            for task in now - before:
                applied.setdefault((task, True), at)
            for task in before - now:
                applied.setdefault((task, False), at)
            known[record.key] = now

    running = Node(NodeOptions(bootstrap=bootstrap, catalog=catalog, node_id="bench", agent_ip="10.201.0.1",
                               roles=("l4lb",), netns=netns, resync_interval=3600))
    role = running.l4lb
    role.on_applied = on_applied
    stop = asyncio.Event()
    sizes = TopicSizes(bootstrap)
    node = None
    try:
        await asyncio.to_thread(wait_http, f"{marathon_url}/ping", 120)
        started = time.monotonic()
        processes.spawn("producer", "produce", "--bootstrap", bootstrap, "--namespace", catalog.namespace,
                        "--mesos", f"http://127.0.0.1:{mesos}", "--marathon", marathon_url)
        processes.spawn("processor", "process", "--bootstrap", bootstrap, "--namespace", catalog.namespace)
        node = asyncio.create_task(running.run(stop))
        stages = await load(args, role, processes, sizes, catalog, started)
        # What the kernel holds now, as the starting point of every churned VIP. Nothing changes
        # between this read and the churn: the simulator is quiet until it is asked to churn.
        table = await asyncio.to_thread(read_table, bootstrap, catalog.topic("vips").name, 60.0)
        known.update({key: weighted_tasks(value) for key, value in table.items()})
        measuring = True
        role.convergence_s.clear()  # the node's own figure, for the churn only
        # A churn operation is a launch or a kill: two task state changes each.
        cpu = CpuMeter(processes, bootstrap)
        cpu.start()
        report = await run_churn(marathon_url, args.rate, args.seconds, processes)
        churn_cpu = cpu.stop()
        wanted = measured_changes(report, {"TASK_RUNNING": True, "TASK_KILLING": False})
        drained_s = await drain(lambda: sum(change not in applied for change in wanted), processes)
        processes.check()
        observed = await asyncio.to_thread(producer_observed, bootstrap, catalog, report["posted_at"])
        stop.set()
        await asyncio.wait_for(node, 60)
    finally:
        stop.set()
        if node is not None and not node.done():
            node.cancel()
        sizes.close()
        processes.stop()
    shutil.rmtree(workdir)  # kept only when the run failed, for its logs
    return {**summarize(args, report, applied, stages, role, hops, drained_s, observed), "cpu_during_churn": churn_cpu}


# -- the churn: shared with bench/dns_convergence.py ---------------------------------------------
WINDOW_S = 2  # latencies are also reported by the second (of the churn) the change was made in


def summarize(args, report: dict, applied: dict[tuple[str, bool], float], stages: dict, role: ReconcileLoop,
              hops: dict[str, list[float]], drained_s: float, observed: dict[tuple[str, str], float]) -> dict:
    latencies: dict[str, list[float]] = {"launch": [], "kill": []}
    windows: dict[int, list[float]] = {}
    missing = 0
    states = [c for c in report["changes"] if c["kind"] == "task_state"]
    first = min((c["at"] for c in states), default=0.0)
    for change in states:
        kind = {"TASK_RUNNING": "launch", "TASK_KILLING": "kill"}.get(change["state"])
        if kind is None:
            continue
        at = applied.get((change["task_id"], kind == "launch"))
        if at is None:
            missing += 1
        else:
            latencies[kind].append((at - change["at"]) * 1000)
            windows.setdefault(int((change["at"] - first) // WINDOW_S * WINDOW_S), []).append(latencies[kind][-1])
    every = latencies["launch"] + latencies["kill"]
    from_producer = [s * 1000 for s in role.convergence_s]
    churn = churn_figures(report, args.rate, args.seconds, drained_s, observed)
    return {
        "benchmark": "l4lb convergence",
        "goal": goal(args.rate, "p99 <= 100 ms at 100 changes/s with 10,000 VIPs x 3 backends"),
        "vips": args.vips,
        "backends_per_vip": 3,
        "rate_changes_per_second": args.rate,
        "achieved_task_state_changes_per_second": churn["achieved_task_state_changes_per_second"],
        "churn": churn,
        "load_stages_s": stages,
        "measured_from": "simulator change stamp (wall clock) to the kernel sync that applied it",
        "measured_changes": len(every),
        "missing": missing,
        "latency_ms": _summary(every),
        # A latency that grows window after window is a pipeline slower than the churn.
        "p50_p99_ms_by_window": {f"{start}s": [rounded(percentile(values, 50)), rounded(percentile(values, 99))]
                                 for start, values in sorted(windows.items())},
        "launch_latency_ms": _summary(latencies["launch"]),
        "kill_latency_ms": _summary(latencies["kill"]),
        "node_convergence_from_producer_observed_ms": _summary(from_producer),
        "hops_ms": {hop: _summary(values) for hop, values in hops.items()},
    }


def _summary(values: list[float]) -> dict:
    return {"count": len(values), "p50": rounded(percentile(values, 50)), "p99": rounded(percentile(values, 99)),
            "max": rounded(max(values) if values else None)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default=os.environ.get("WAYFINDER_BOOTSTRAP"))
    parser.add_argument("--vips", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=100.0,
                        help="task state changes per second (rate/2 launches and kills a second; at most 20,000)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--port-base", type=int, help="simulator ports PORT (Mesos) and PORT+1 (Marathon); default: free ports")
    parser.add_argument("--netns-prefix", default="wf-bench-")
    parser.add_argument("--kafka-base-port", type=int, default=47192,
                        help="without --bootstrap: the broker this script starts uses PORT and PORT+1")
    args = parser.parse_args()
    netns = f"{args.netns_prefix}{secrets.token_hex(3)}"
    with bench_kafka(args.bootstrap, base_port=args.kafka_base_port) as bootstrap:
        subprocess.run(["ip", "netns", "add", netns], check=True)
        try:
            print(json.dumps(asyncio.run(measure(args, bootstrap, netns)), indent=2))
        finally:
            subprocess.run(["ip", "netns", "del", netns], check=False)


if __name__ == "__main__":
    main()
