"""Overlay convergence benchmark: from an agent joining the cluster in the simulator to every
node having its route to that agent's subnet, with 1,000 agents. Prints JSON.

    sudo .venv/bin/python bench/overlay_convergence.py [--bootstrap HOST:PORT | --kafka-base-port 47292]
        [--agents 1000] [--nodes 3] [--joins 100] [--interval 0.2] [--resync 30] [--sample 10]

The real pipeline: the simulator, producer and processor run as their own processes (logs in a
temporary directory, named on stderr, removed after a successful run); without --bootstrap a
broker of its own. The N nodes run here, each its own `Node` with the `overlay` role only, each
in a network namespace this script creates (`wfoc-<random>-<n>`) with a real agent IP
(10.203.0.n on a veth inside it) that is also its agent's IP in the simulator. The other agents
(10.204.x.y) are simulated only: their leases become routes and neighbours, their IPs need not
exist.

Loading: --agents agents (the N nodes' among them) registered in the simulator before the
producer starts; the clock runs until every node has every agent's lease applied.

Measuring: --joins agents registered one at a time, --interval s apart (`POST /sim/agents`).
A join counts from the simulator's own stamp on it (`at` in the reply: its wall clock when the
model changed, before the producer has seen anything) to the end of the node's pass that
applied the agent's `dcos` lease (the loop's `on_applied`, same host, same clock), once the
role's applied state holds the route to the agent's subnet (`LeaseIndex.main_route`). Per node,
and per join for all nodes (the slowest node). Then a sample of the joined agents is checked
against each node's kernel (`ip -j route show proto 88` in its namespace: the route to the
subnet via the agent's VTEP), and every node's count of overlay routes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from appliers.node import Node, NodeOptions  # noqa: E402
from bench.broker import bench_kafka  # noqa: E402
from bench.pipeline import Processes, rounded, say  # noqa: E402
from bench.producer_latency import free_port, http, percentile, wait_http  # noqa: E402
from runtime.kafka.topics import ensure_topics  # noqa: E402
from runtime.reconcile import ReconcileLoop  # noqa: E402
from schemas.catalog import Catalog  # noqa: E402
from schemas.headers import RecordMeta  # noqa: E402
from schemas.overlay import lease_key  # noqa: E402

GOAL = "p99 <= 100 ms from the join's stamp to its route on every node, 1,000 agents"
OVERLAY = "dcos"  # the IPv4 overlay of the processor's default configuration (9.0.0.0/8, /24 each)
NAMESPACE_PREFIX = "wfoc-"
LOAD_TIMEOUT_S = 300.0
DRAIN_TIMEOUT_S = 30.0
MAX_AGENTS = 60_000  # the simulated agents' IPs are 10.204.x.y; this bounds every loop over them
PROGRESS_EVERY_S = 2.0


def node_ip(n: int) -> str:
    return f"10.203.0.{n}"


def simulated_ip(i: int) -> str:
    return f"10.204.{i >> 8}.{i & 255}"


# -- namespaces -----------------------------------------------------------------------------------
def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=20).stdout


def make_namespace(name: str, address: str) -> None:
    """A namespace whose underlay holds the node's agent IP (the tunnel's local address; the
    simulated peers are never sent to). A veth pair with both ends inside: this kernel has no
    dummy device, and the pair goes with the namespace."""
    ip("netns", "add", name)
    ip("-n", name, "link", "set", "lo", "up")
    ip("-n", name, "link", "add", "wfunder", "type", "veth", "peer", "name", "wfunder-peer")
    ip("-n", name, "addr", "add", f"{address}/16", "dev", "wfunder")
    ip("-n", name, "link", "set", "wfunder", "up")
    ip("-n", name, "link", "set", "wfunder-peer", "up")


def our_namespaces(prefix: str) -> list[str]:
    return [line.split()[0] for line in ip("netns", "list").splitlines() if line.startswith(prefix)]


def kernel_routes(namespace: str) -> dict[str, str]:
    """The namespace's main-table routes of protocol 88 (the overlay role's): dst -> gateway."""
    routes = json.loads(ip("-n", namespace, "-j", "route", "show", "proto", "88") or "[]")
    return {route["dst"]: route.get("gateway", "") for route in routes}


# -- the simulator --------------------------------------------------------------------------------
async def join(control_url: str, address: str) -> tuple[str, float]:
    """Registers an agent; its id and the simulator's stamp on the change."""
    reply = await asyncio.to_thread(http, "POST", f"{control_url}/sim/agents", {"hostname": address, "ip": address})
    (added,) = [change for change in reply["changes"] if change["kind"] == "agent_added"]
    return added["agent_id"], added["at"]


# -- the nodes ------------------------------------------------------------------------------------
class Applied:
    """When each node's pass applied each lease whose route the role's applied state holds, and
    where the time went on the way (from the record's headers)."""

    def __init__(self) -> None:
        self.at: dict[tuple[int, str], float] = {}  # (node, lease key) -> end of the applying pass
        self.hops: dict[str, list[float]] = {"producer_observed_to_processor_write": [],
                                             "processor_write_to_applied": []}
        self.observed: dict[str, float] = {}  # lease key -> when the producer observed the join (node 1's record)
        self.measuring = False

    def listen(self, n: int, loop: ReconcileLoop) -> None:
        index = loop.role.index

        def on_applied(records, at: float) -> None:
            if not self.measuring:
                return
            for record in records:
                if record.value is None or not (record.key or "").startswith(f"{OVERLAY}/"):
                    continue
                if index.main_route(record.key) is None:
                    continue  # this node's own lease, or not applied yet
                if self.at.setdefault((n, record.key), at) == at and n == 1:
                    meta = RecordMeta.from_headers(record.headers)
                    if meta:
                        self.observed[record.key] = meta.observed_ns / 1e9
                        self.hops["producer_observed_to_processor_write"].append(
                            record.timestamp_ms - meta.observed_ns / 1e6)
                        self.hops["processor_write_to_applied"].append(at * 1000 - record.timestamp_ms)

        loop.on_applied = on_applied


def peers_applied(loop: ReconcileLoop) -> int:
    return sum(1 for key in loop.role.index.leases if key.startswith(f"{OVERLAY}/"))


async def load(args, loops: list[ReconcileLoop], processes: Processes, started: float) -> float:
    """Until every node is ready with every agent's lease planned and applied."""
    deadline = started + LOAD_TIMEOUT_S
    while True:
        processes.check()
        held = [peers_applied(loop) for loop in loops]
        elapsed = time.monotonic() - started
        say(f"{elapsed:6.1f}s  leases applied per node: {held}  ready: {[loop.ready.is_set() for loop in loops]}")
        if all(loop.ready.is_set() for loop in loops) and min(held) >= args.agents:
            return round(elapsed, 2)
        if time.monotonic() > deadline:
            raise TimeoutError(f"not loaded in {LOAD_TIMEOUT_S:.0f}s: {held} of {args.agents}; logs in {processes.logs}")
        await asyncio.sleep(PROGRESS_EVERY_S)


async def measure(args, bootstrap: str, namespaces: list[str], workdir: Path) -> dict:
    catalog = Catalog(f"bench{secrets.token_hex(4)}")
    ensure_topics(bootstrap, catalog)
    mesos, control = free_port(), free_port()
    control_url = f"http://127.0.0.1:{control}"
    processes = Processes(workdir)
    stop, tasks = asyncio.Event(), []
    applied = Applied()
    try:
        processes.spawn("simulator", "simulate", "--mesos-listen", f"127.0.0.1:{mesos}", "--marathon-listen",
                        f"127.0.0.1:{control}")
        await asyncio.to_thread(wait_http, f"{control_url}/ping", 120)
        say(f"registering {args.agents} agents ({args.nodes} of them the nodes)")
        for i in range(1, args.agents + 1):
            await join(control_url, node_ip(i) if i <= args.nodes else simulated_ip(i))
        started = time.monotonic()
        processes.spawn("producer", "produce", "--bootstrap", bootstrap, "--namespace", catalog.namespace,
                        "--mesos", f"http://127.0.0.1:{mesos}", "--marathon", control_url)
        processes.spawn("processor", "process", "--bootstrap", bootstrap, "--namespace", catalog.namespace)
        nodes = [Node(NodeOptions(bootstrap, catalog, f"bench-{n}", node_ip(n), roles=("overlay",),
                                  netns=namespaces[n - 1], overlay_dir=str(workdir / f"cni-{n}"),
                                  resync_interval=args.resync)) for n in range(1, args.nodes + 1)]
        loops = [node.loops["overlay"] for node in nodes]
        for n, loop in enumerate(loops, 1):
            applied.listen(n, loop)
        tasks = [asyncio.create_task(node.run(stop)) for node in nodes]
        loaded_s = await load(args, loops, processes, started)

        applied.measuring = True
        joined: dict[str, float] = {}  # lease key -> the simulator's stamp
        for j in range(args.joins):
            agent_id, at = await join(control_url, simulated_ip(args.agents + 1 + j))
            joined[lease_key(OVERLAY, agent_id)] = at
            await asyncio.sleep(args.interval)
        wanted = {(n, key) for n in range(1, args.nodes + 1) for key in joined}
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while not wanted <= applied.at.keys() and time.monotonic() < deadline:
            processes.check()
            await asyncio.sleep(0.1)
        kernel = await asyncio.to_thread(check_kernel, args, loops, namespaces, sorted(joined))
        passes = [loop.passes for loop in loops]
        partial = [loop.role.partial_passes for loop in loops]
        failures = [loop.failures for loop in loops]
    finally:
        stop.set()
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=60)
            for task in pending:
                task.cancel()
        processes.stop()
    left = [processes.names[p.pid] for p in processes.running if p.poll() is None]
    result = summarize(args, joined, applied, loaded_s, kernel, {"passes": passes, "partial_passes": partial,
                                                                 "failures": failures})
    return {**result, "processes_left": left}


def check_kernel(args, loops: list[ReconcileLoop], namespaces: list[str], keys: list[str]) -> dict:
    """A sample of the joined agents' routes read back from each node's kernel, and each
    node's count of overlay routes (every peer's subnet)."""
    sample = random.Random(7).sample(keys, min(args.sample, len(keys)))
    missing, counts = [], []
    for n, (loop, namespace) in enumerate(zip(loops, namespaces), 1):
        routes = kernel_routes(namespace)
        counts.append(sum(1 for dst in routes if dst.startswith("9.")))
        for key in sample:
            want = loop.role.index.main_route(key)
            if want is None or routes.get(want[0]) != want[1]:
                missing.append(f"node {n}: {key} {want}")
    peers = args.agents + args.joins - 1
    return {"sampled_agents": len(sample), "nodes": len(loops), "missing": missing,
            "overlay_routes_per_node": counts, "peers_per_node": peers,
            "ok": not missing and all(count == peers for count in counts)}


def summarize(args, joined: dict[str, float], applied: Applied, loaded_s: float, kernel: dict, loops: dict) -> dict:
    per_node = [(applied.at[(n, key)] - at) * 1000 for key, at in joined.items()
                for n in range(1, args.nodes + 1) if (n, key) in applied.at]
    every_node = [(max(applied.at[(n, key)] for n in range(1, args.nodes + 1)) - at) * 1000
                  for key, at in joined.items() if all((n, key) in applied.at for n in range(1, args.nodes + 1))]
    p99 = percentile(every_node, 99)
    # In join order, by tenths of the run: a tail in one tenth is an event (a resync, a
    # rebalance), one that grows tenth after tenth a pipeline slower than the joins.
    tenth = max(1, len(every_node) // 10)
    by_tenth = [[rounded(percentile(every_node[i:i + tenth], 50)), rounded(max(every_node[i:i + tenth]))]
                for i in range(0, len(every_node), tenth)]
    return {
        "benchmark": "overlay convergence",
        "goal": GOAL,
        "goal_met": p99 is not None and p99 <= 100 and len(every_node) == len(joined),
        "agents": args.agents, "nodes": args.nodes, "joins": len(joined), "interval_s": args.interval,
        "resync_s": args.resync,
        "measured_from": "simulator stamp of POST /sim/agents to the end of the node pass that applied the route",
        "every_node_ms": _summary(every_node),
        "per_node_ms": _summary(per_node),
        "every_node_p50_max_ms_by_tenth": by_tenth,
        "missing": len(joined) * args.nodes - len(per_node),
        "load_s": loaded_s,
        "hops_ms_node_1": {"stamp_to_producer_observed": _summary(
            [(applied.observed[key] - at) * 1000 for key, at in joined.items() if key in applied.observed]),
            **{hop: _summary(values) for hop, values in applied.hops.items()}},
        "kernel_check": kernel,
        "loops": loops,
    }


def _summary(values: list[float]) -> dict:
    return {"count": len(values), "p50": rounded(percentile(values, 50)), "p99": rounded(percentile(values, 99)),
            "max": rounded(max(values) if values else None)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", default=os.environ.get("WAYFINDER_BOOTSTRAP"))
    parser.add_argument("--kafka-base-port", type=int, default=47292,
                        help="without --bootstrap: the broker this script starts uses PORT and PORT+1")
    parser.add_argument("--agents", type=int, default=1000, help="agents before the joins, the nodes' included")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--joins", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between two joins")
    parser.add_argument("--resync", type=float, default=30.0, help="the nodes' full pass every S seconds (as in production)")
    parser.add_argument("--sample", type=int, default=10, help="joined agents checked against each node's kernel")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces, VXLAN, nftables)")
    if not 1 <= args.nodes <= 200 or not args.nodes < args.agents or args.agents + args.joins > MAX_AGENTS \
            or not 1 <= args.joins or args.interval < 0:
        sys.exit(f"1 <= nodes <= 200, nodes < agents, agents + joins <= {MAX_AGENTS}, joins >= 1, interval >= 0")
    prefix = f"{NAMESPACE_PREFIX}{secrets.token_hex(3)}-"
    namespaces = [f"{prefix}{n}" for n in range(1, args.nodes + 1)]
    workdir = Path(tempfile.mkdtemp(prefix="wayfinder-bench-"))
    say(f"logs: {workdir}")
    started, result = time.monotonic(), None
    with bench_kafka(args.bootstrap, base_port=args.kafka_base_port) as bootstrap:
        try:
            for n, namespace in enumerate(namespaces, 1):
                make_namespace(namespace, node_ip(n))
            result = asyncio.run(measure(args, bootstrap, namespaces, workdir))
        finally:
            for namespace in our_namespaces(prefix):
                subprocess.run(["ip", "netns", "del", namespace], check=False, timeout=20)
    left = our_namespaces(prefix)
    if result is not None:
        result["cleanup"] = {"namespaces_left": left, "wall_s": round(time.monotonic() - started, 1)}
        shutil.rmtree(workdir)  # kept only when the run failed, for its logs
        print(json.dumps(result, indent=2))
    if left:
        sys.exit(f"namespaces left behind: {left}")


if __name__ == "__main__":
    main()
