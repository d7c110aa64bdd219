"""L4 convergence benchmark: from the simulator's change stamp to the backend being present (or
gone) in a node's kernel, with N VIPs x 3 backends loaded and churn at a fixed rate. Prints JSON.

    sudo .venv/bin/python bench/l4lb_convergence.py [--bootstrap HOST:PORT] [--vips 10000] [--rate 100] [--seconds 20]

Simulator, producer and processor run as their own processes; the node's l4lb role runs here,
programming nftables inside a network namespace this script creates and removes. A launch
counts when its backend appears in the kernel; a kill when it is gone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from appliers.node import L4Role, NodeOptions  # noqa: E402
from runtime.kafka import cluster  # noqa: E402
from runtime.kafka.topics import ensure_topics  # noqa: E402
from schemas.catalog import Catalog  # noqa: E402

from bench.producer_latency import free_port, http, percentile, wait_http  # noqa: E402

WAYFINDER = str(Path(sys.executable).with_name("wayfinder"))
AGENTS = 50


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


def spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen([WAYFINDER, "--log-level", "warning", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def measure(args, bootstrap: str, netns: str) -> dict:
    catalog = Catalog(f"bench{secrets.token_hex(4)}")
    ensure_topics(bootstrap, catalog)
    workdir = Path(tempfile.mkdtemp(prefix="wayfinder-bench-"))
    apps = workdir / "apps.json"
    apps.write_bytes(orjson.dumps(marathon_document(args.vips)))
    mesos, marathon = free_port(), free_port()
    marathon_url = f"http://127.0.0.1:{marathon}"
    processes = [spawn("simulate", "--mesos-listen", f"127.0.0.1:{mesos}", "--marathon-listen", f"127.0.0.1:{marathon}",
                       "--marathon-apps", str(apps))]
    applied: dict[tuple[str, bool], float] = {}  # (task id, present?) -> when the kernel had it
    known: dict[str, set[str]] = {}  # VIP key -> task ids of its weighted backends

    def on_applied(records, at: float) -> None:
        for record in records:
            now = {b["task_id"] for b in orjson.loads(record.value)["backends"] if b["weight"] > 0} if record.value else set()
            before = known.get(record.key, set())
            for task in now - before:
                applied.setdefault((task, True), at)
            for task in before - now:
                applied.setdefault((task, False), at)
            known[record.key] = now

    role = L4Role(NodeOptions(bootstrap=bootstrap, catalog=catalog, node_id="bench", agent_ip="10.201.0.1",
                              netns=netns, resync_interval=3600), on_applied=on_applied)
    stop = asyncio.Event()
    try:
        await asyncio.to_thread(wait_http, f"{marathon_url}/ping", 120)
        started = time.monotonic()
        processes.append(spawn("produce", "--bootstrap", bootstrap, "--namespace", catalog.namespace,
                               "--mesos", f"http://127.0.0.1:{mesos}", "--marathon", marathon_url))
        processes.append(spawn("process", "--bootstrap", bootstrap, "--namespace", catalog.namespace))
        node = asyncio.create_task(role.run(stop))
        await asyncio.wait_for(role.caught_up.wait(), 600)
        deadline = time.monotonic() + 600
        while len(known) < args.vips:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(known)} of {args.vips} VIPs reached the kernel")
            await asyncio.sleep(0.5)
        cold = time.monotonic() - started
        applied.clear()
        churn = await asyncio.to_thread(http, "POST", f"{marathon_url}/sim/churn", {"rate": args.rate / 2, "seconds": args.seconds})
        await asyncio.sleep(args.seconds + 3)
        report = await asyncio.to_thread(http, "GET", f"{marathon_url}/sim/churn/{churn['id']}")
        stop.set()
        await asyncio.wait_for(node, 60)
    finally:
        stop.set()
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
    latencies, missing = [], 0
    for change in report["changes"]:
        if change["kind"] != "task_state" or change["state"] not in ("TASK_RUNNING", "TASK_KILLED"):
            continue
        at = applied.get((change["task_id"], change["state"] == "TASK_RUNNING"))
        if at is None:
            missing += 1
        else:
            latencies.append((at - change["at"]) * 1000)
    return {
        "benchmark": "l4lb convergence",
        "goal": "p99 <= 100 ms at 100 changes/s with 10,000 VIPs x 3 backends",
        "vips": args.vips,
        "rate_changes_per_second": args.rate,
        "cold_start_to_all_vips_in_kernel_s": round(cold, 2),
        "measured_changes": len(latencies),
        "missing": missing,
        "latency_ms": {"p50": _round(percentile(latencies, 50)), "p99": _round(percentile(latencies, 99)),
                       "max": _round(max(latencies) if latencies else None)},
        "node_convergence_from_producer_ms": {
            "p50": _round(percentile([s * 1000 for s in role.convergence_s], 50)),
            "p99": _round(percentile([s * 1000 for s in role.convergence_s], 99)),
        },
    }


def _round(value):
    return round(value, 2) if value is not None else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default=os.environ.get("WAYFINDER_BOOTSTRAP"))
    parser.add_argument("--vips", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    netns = f"wf-bench-{secrets.token_hex(3)}"
    kafka_dir = None
    bootstrap = args.bootstrap
    if not bootstrap:
        os.environ.setdefault("WAYFINDER_KAFKA_JVM_FLAGS", "")
        kafka_dir = Path(tempfile.mkdtemp(prefix="wayfinder-bench-kafka-"))
        bootstrap = cluster.up(kafka_dir, base_port=47192)
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        print(json.dumps(asyncio.run(measure(args, bootstrap, netns)), indent=2))
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)
        if kafka_dir:
            cluster.down(kafka_dir)


if __name__ == "__main__":
    main()
