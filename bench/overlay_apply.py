"""Overlay node role benchmark (issue 12, part 4): per-change apply cost at several peer counts,
and the cold start of a node with many peers, against the real kernel. Prints JSON.
Not a test: the machines are shared and noisy.

    sudo .venv/bin/python bench/overlay_apply.py [--sizes 100,1000,5000] [--changes 150] [--cold 5000]

The leases name the overlay's network (9.0.0.0/8), so the masquerade holds one element whatever
the peers; `--legacy-leases` leaves it out, as a processor before the field did (one element
per peer, and nft 1.0.6 rewrites the whole interval set for each).

Per size, in a network namespace it creates and deletes (`wfbo-<random>-<size>`): one node
(agent 10.98.0.1) runs the overlay role (appliers/overlay/role.py) with N peers programmed by a
first full pass, then `--changes` single-lease passes, as the reconcile loop runs them (the
loop's partial scope: observe, plan, apply), cycling through peer added / peer changed (its VTEP
MAC) / peer removed. Reported per change: the whole pass (`pass`) and how many operations it
applied. A final full pass must find nothing to do; the kernel's object counts show the
state is real.

Cold start: a reconcile loop over a fake follower that already holds the node's lease and
`--cold` peers (no Kafka), from `run()` to the loop being ready (the table decoded, the kernel
read, planned and programmed), in a fresh namespace.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from appliers.overlay.kernel import OverlayKernel  # noqa: E402
from appliers.overlay.role import OverlayRole  # noqa: E402
from runtime.kafka.fake_follower import FakeFollower  # noqa: E402
from runtime.reconcile import ProcessorReady, ReconcileLoop, Scope  # noqa: E402
from schemas import codec  # noqa: E402
from schemas.overlay import Lease, lease_key  # noqa: E402

KINDS = ("peer added", "peer changed", "peer removed")
MAX_PEERS = 60_000  # the /16s below hold 65,534; this bounds the run
GOALS = {"per_change": "p99 <= 2 ms, flat across sizes", "cold_start": "<= 3 s with 5,000 peers"}


LEGACY = False  # --legacy-leases: leases as a processor before `network` wrote them


def agent_lease(n: int, mac_byte: int | None = None) -> Lease:
    """Agent n (1 is the node): agent IP 10.98.x.y, subnet 9.x.y.0/24 of 9.0.0.0/8, VTEP 44.128.x.y/16."""
    hi, lo = n >> 8, n & 255
    mac = f"70:b3:d5:80:{hi:02x}:{lo:02x}" if mac_byte is None else f"70:b3:d5:{mac_byte:02x}:{hi:02x}:{lo:02x}"
    return Lease("dcos", f"agent-{n}", f"10.98.{hi}.{lo}", f"9.{hi}.{lo}.0/24", f"9.{hi}.{lo}.0/25",
                 f"9.{hi}.{lo}.128/25", vtep_ip=f"44.128.{hi}.{lo}", vtep_prefix=16, vtep_mac=mac,
                 network=None if LEGACY else "9.0.0.0/8")


def table(agents) -> dict[str, Lease]:
    return {lease_key("dcos", f"agent-{n}"): agent_lease(n) for n in agents}


def stats(values: list[float]) -> dict:
    """p50 / p99 (nearest rank) / max, in milliseconds."""
    s = sorted(values)
    rank = lambda q: s[min(len(s) - 1, max(0, int(q * len(s) + 0.999999) - 1))]  # noqa: E731
    return {"p50_ms": round(rank(0.50) * 1e3, 3), "p99_ms": round(rank(0.99) * 1e3, 3), "max_ms": round(s[-1] * 1e3, 3)}


def one_pass(role: OverlayRole, leases: dict, keys) -> int:
    """One pass as the loop runs it; the operations applied."""
    scope = Scope(None if keys is None else frozenset(keys), True)
    plan = role.plan(leases, role.observe(scope), scope)
    if plan:
        role.apply(plan)
    return len(plan.kernel) if plan else 0


def counts(kernel: OverlayKernel) -> dict:
    state = kernel.read()
    return {"neighbours": len(state.neighbours), "fdb": len(state.fdb),
            "routes_main": sum(1 for table_id, _ in state.routes if table_id == 254),
            "routes_table_42": sum(1 for table_id, _ in state.routes if table_id == 42),
            "masquerade_overlay_elements": len(state.nat.overlay) if state.nat else 0}


def netns(size: int) -> str:
    name = f"wfbo-{secrets.token_hex(3)}-{size}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=20)
    return name


def run_size(size: int, changes: int) -> dict:
    name = netns(size)
    kernel = OverlayKernel(name)
    try:
        role = OverlayRole(kernel, agent_lease(1).agent_ip)
        leases = table(range(1, size + 2))
        started = time.perf_counter()
        one_pass(role, leases, None)
        build_s = time.perf_counter() - started
        times: dict[str, list[float]] = {kind: [] for kind in KINDS}
        operations: dict[str, int] = {kind: 0 for kind in KINDS}
        added, changed, removed = size + 2, 2, size + 1  # never the same peer twice
        for step in range(changes):
            kind = KINDS[step % 3]
            if kind == "peer added":
                n, added = added, added + 1
                leases[lease_key("dcos", f"agent-{n}")] = agent_lease(n)
            elif kind == "peer changed":
                n, changed = changed, changed + 1
                leases[lease_key("dcos", f"agent-{n}")] = agent_lease(n, mac_byte=0x81)
            else:
                n, removed = removed, removed - 1
                del leases[lease_key("dcos", f"agent-{n}")]
            t0 = time.perf_counter()
            operations[kind] += one_pass(role, leases, [lease_key("dcos", f"agent-{n}")])
            times[kind].append(time.perf_counter() - t0)
        every = [t for values in times.values() for t in values]
        t0 = time.perf_counter()
        left = one_pass(role, leases, None)
        return {"peers": size, "first_full_pass_s": round(build_s, 3), "changes": len(every),
                "partial_passes": role.partial_passes, "pass": stats(every),
                "by_kind": {kind: {**stats(values), "operations_per_change": operations[kind] / max(1, len(values))}
                            for kind, values in times.items()},
                "final_full_pass": {"s": round(time.perf_counter() - t0, 3), "operations": left},
                "kernel_objects": counts(kernel)}
    finally:
        kernel.close()
        subprocess.run(["ip", "netns", "del", name], check=False, timeout=20)


async def cold_start(peers: int) -> dict:
    name = netns(peers)
    kernel = OverlayKernel(name)
    try:
        follower = FakeFollower("overlay")
        for key, lease in table(range(1, peers + 2)).items():
            follower.publish(key, codec.encode(lease))
        role = OverlayRole(kernel, agent_lease(1).agent_ip)
        loop = ReconcileLoop(role, follower, ProcessorReady(True), resync_interval=None, poll_interval=0.01)
        stop = asyncio.Event()
        started = time.perf_counter()
        task = asyncio.create_task(loop.run(stop))
        deadline = started + 120
        while not loop.ready.is_set() and time.perf_counter() < deadline and not task.done():
            await asyncio.sleep(0.005)
        ready_s = time.perf_counter() - started
        stop.set()
        await asyncio.wait_for(task, 30)
        if not loop.ready.is_set():
            raise RuntimeError(f"not ready in 120 s: {loop.last_error}")
        return {"peers": peers, "ready_s": round(ready_s, 3), "operations": role.operations,
                "kernel_objects": counts(kernel), "goal": GOALS["cold_start"]}
    finally:
        kernel.close()
        subprocess.run(["ip", "netns", "del", name], check=False, timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--changes", type=int, default=150)
    parser.add_argument("--cold", type=int, default=5000, help="peers of the cold start; 0: none")
    parser.add_argument("--legacy-leases", action="store_true",
                        help="leases without `network` (an older processor's): one masquerade element per peer")
    args = parser.parse_args()
    global LEGACY
    LEGACY = args.legacy_leases
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces, VXLAN, nftables)")
    if any(not 0 < s <= MAX_PEERS for s in [*sizes, args.cold or 1]) or not 0 < args.changes <= 3 * min(sizes) // 2:
        sys.exit(f"sizes 1..{MAX_PEERS}; changes 1..1.5x the smallest size (a third of them remove peers)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # through the finally blocks: no namespace left
    started = time.monotonic()
    results = [run_size(size, args.changes) for size in sizes]
    cold = asyncio.run(cold_start(args.cold)) if args.cold else None
    print(json.dumps({"bench": "overlay_apply", "goal": GOALS["per_change"], "legacy_leases": LEGACY,
                      "sizes": results, "cold_start": cold,
                      "wall_s": round(time.monotonic() - started, 1)}, indent=2))


if __name__ == "__main__":
    main()
