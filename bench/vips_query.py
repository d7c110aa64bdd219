"""`wayfinder vips --json` against a node that holds 10,000 VIPs (issue 13). Prints JSON.
Not a test: the machines are shared and noisy.

    .venv/bin/python bench/vips_query.py [--vips 10000] [--runs 10]

A node status endpoint (appliers/status_server.py) serves an in-memory desired table of N
VIPs x 3 backends on a unix socket, from a thread of this process; no Kafka, no kernel
writes. Timed, per run:
- ``in_process``: the command through click's CliRunner, the kernel read stubbed out (empty),
  so the figure is the query, the decode, the comparison and the JSON output;
- ``node_answer``: the request and decode alone;
- ``kernel_read`` (root only): N VIPs x 3 backends programmed by the L4 applier into a fresh
  network namespace, read back by the netlink element reader `wayfinder vips` uses
  (Kernel.read_elements) against the reference, the applier's libnftables listing
  (Kernel.read), in the same run;
- ``subprocess`` (root only): ``wayfinder vips --node SOCKET --json --netns N`` as a process
  against that full kernel, every VIP programmed: interpreter start-up and imports included.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from click.testing import CliRunner  # noqa: E402

import appliers.l4lb.kernel  # noqa: E402
from appliers.status_server import NodeStatusServer  # noqa: E402
from bench.l4lb_apply import make_vip  # noqa: E402
from cli.main import main  # noqa: E402
from cli.vips_command import vips_from_node  # noqa: E402

WAYFINDER = str(Path(sys.executable).with_name("wayfinder"))


class EmptyKernel:
    def __init__(self, netns=None) -> None:
        pass

    def read_elements(self) -> dict:
        return {}

    def close(self) -> None:
        pass


def fake_l4lb_loop(size: int) -> SimpleNamespace:
    """What the status server reads of a ReconcileLoop."""
    ready = asyncio.Event()
    ready.set()
    return SimpleNamespace(desired=dict(make_vip(i) for i in range(size)), ready=ready, complete=True,
                           passes=1, failures=0, refused=0, last_error=None)


def serve(socket_path: str, size: int) -> tuple[asyncio.AbstractEventLoop, threading.Event]:
    """The endpoint on its own event loop thread; returns once it listens."""
    loop = asyncio.new_event_loop()
    listening = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        server = NodeStatusServer(socket_path, {"l4lb": fake_l4lb_loop(size)})
        loop.run_until_complete(server.start())
        listening.set()
        loop.run_forever()
        loop.run_until_complete(server.stop())

    threading.Thread(target=run, daemon=True).start()
    if not listening.wait(60):
        raise SystemExit("the status endpoint did not start")
    return loop, listening


def summary(samples: list[float]) -> dict:
    ms = sorted(s * 1000 for s in samples)
    return {"min_ms": round(ms[0], 1), "median_ms": round(statistics.median(ms), 1), "max_ms": round(ms[-1], 1)}


def program_and_read(netns: str, size: int, runs: int) -> dict:
    """The VIPs the node serves, programmed into `netns`; then both readers, timed."""
    from appliers.l4lb.applier import L4Applier

    kernel = appliers.l4lb.kernel.Kernel(netns)
    try:
        applier = L4Applier(kernel)
        applier.set_desired(dict(make_vip(i) for i in range(size)), complete=True)
        assert applier.sync().ok
        timed: dict[str, list[float]] = {"netlink": [], "libnftables": []}
        for _ in range(runs):
            for name, read in (("netlink", kernel.read_elements), ("libnftables", kernel.read)):
                started = time.perf_counter()
                state = read()
                timed[name].append(time.perf_counter() - started)
                assert len(state["ip"].endpoints) == 3 * size
        out = {name: summary(samples) for name, samples in timed.items()}
        out["netlink_over_libnftables_median"] = round(out["netlink"]["median_ms"] / out["libnftables"]["median_ms"], 3)
        return out
    finally:
        kernel.close()


def main_bench() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vips", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="wf-vips-bench-")
    socket_path = os.path.join(directory, "node.sock")
    loop, _ = serve(socket_path, args.vips)
    result: dict = {"vips": args.vips, "runs": args.runs}

    answers = []
    for _ in range(args.runs):
        started = time.perf_counter()
        count = len(vips_from_node(socket_path).vips)
        answers.append(time.perf_counter() - started)
    assert count == args.vips
    result["node_answer"] = summary(answers)

    nft_kernel, appliers.l4lb.kernel.Kernel = appliers.l4lb.kernel.Kernel, EmptyKernel  # imported when it runs
    runner = CliRunner()
    in_process = []
    for _ in range(args.runs):
        started = time.perf_counter()
        outcome = runner.invoke(main, ["vips", "--node", socket_path, "--json"])
        in_process.append(time.perf_counter() - started)
        assert outcome.exit_code == 0, outcome.output
    assert len(json.loads(outcome.stdout)) == args.vips
    result["in_process"] = summary(in_process)
    appliers.l4lb.kernel.Kernel = nft_kernel

    if os.geteuid() == 0:
        netns = f"wfbench-{secrets.token_hex(3)}"
        subprocess.run(["ip", "netns", "add", netns], check=True)
        try:
            result["kernel_read"] = program_and_read(netns, args.vips, args.runs)
            runs = []
            for _ in range(args.runs):
                started = time.perf_counter()
                done = subprocess.run([WAYFINDER, "vips", "--node", socket_path, "--json", "--netns", netns],
                                      capture_output=True, timeout=60)
                runs.append(time.perf_counter() - started)
                assert done.returncode == 0, done.stderr
            entries = json.loads(done.stdout)
            assert len(entries) == args.vips and all(e["programmed"] for e in entries)
            started = time.perf_counter()
            subprocess.run([WAYFINDER, "--version"], capture_output=True, timeout=60, check=True)
            result["subprocess"] = {**summary(runs), "of_which_startup_ms": round((time.perf_counter() - started) * 1000, 1)}
        finally:
            subprocess.run(["ip", "netns", "delete", netns], check=False)
    loop.call_soon_threadsafe(loop.stop)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main_bench()
