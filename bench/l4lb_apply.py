"""L4 applier benchmark (issue 4): cold rebuild and per-change kernel apply time. Prints JSON.
Not a test: the machines are shared and noisy.

    .venv/bin/python bench/l4lb_apply.py [--sizes 1000,10000,30000] [--changes 200]

Needs root and nftables. Per size, in a fresh network namespace it creates and deletes
(`wfbench-<random>-<size>`, nothing leaves it: the applier only programs nftables there):
N VIPs (11.0.0.0/8, tcp 80) x 3 backends (10.200.0.0/16, port 8080) are built cold through
the applier, then `--changes` single-VIP changes are applied one sync each, cycling through
backend added / backend removed / weight to 0 / VIP added / VIP removed. Reported per change:
the nft transaction alone (`apply`) and the whole sync (`sync`: plan + apply + bookkeeping).
A final resync reads the table back and must find nothing to do. The `reference` block runs
the same changes through the `nft -f -` CLI (a process per transaction) for one size.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from appliers.l4lb.applier import ApplyRecord, L4Applier  # noqa: E402
from appliers.l4lb.kernel import Kernel, NftError  # noqa: E402
from schemas.l4lb import Backend, Vip  # noqa: E402

KINDS = ("backend added", "backend removed", "weight to 0", "VIP added", "VIP removed")
MAX_SIZE = 200_000  # 11.0.0.0/8 and 10.200.0.0/16 hold far more; this bounds the run


class BenchKernel(Kernel):
    """The applier's kernel seam; with `cli` set, each transaction runs as `nft -f -` instead of
    in-process libnftables. The process is started from the worker thread, which sits in the
    namespace, and a child inherits its parent thread's network namespace."""

    cli = False

    def run(self, text: str) -> None:
        if not self.cli:
            return super().run(text)
        done = self._call(lambda: subprocess.run(["nft", "-f", "-"], input=text, capture_output=True, text=True, timeout=30))
        if done.returncode:
            raise NftError(done.stderr.strip() or f"nft rc={done.returncode}")


def vip_ip(i: int) -> str:
    n = i + 1  # 11.0.0.1 onwards
    return f"11.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


def backend(i: int, weight: int = 1) -> Backend:
    n = i % 65_000 + 1
    return Backend(f"10.200.{n >> 8}.{n & 255}", 8080, weight, f"task-{i}")


def make_vip(i: int) -> tuple[str, Vip]:
    return f"tcp/{vip_ip(i)}/80", Vip("tcp", vip_ip(i), 80, [backend(3 * i + j) for j in range(3)])


def change_stream(size: int, count: int, rng: random.Random, used: set[int]) -> list:
    """`count` single-VIP changes: (kind, topic key, new record or None). Every change touches
    a VIP no earlier change touched (`used` carries them over to the next stream), so each one
    is a real change of the kind it claims."""
    victims = rng.sample(sorted(set(range(size)) - used), count)
    added = size + len(used)  # VIPs added get indexes no earlier stream used
    used.update(victims)
    return list(_changes(victims, added))


def _changes(victims: list[int], added: int):
    for step, i in enumerate(victims):
        kind = KINDS[step % len(KINDS)]
        name, vip = make_vip(i)
        if kind == "backend added":
            yield kind, name, Vip("tcp", vip.ip, 80, [*vip.backends, backend(3 * (added + step) + 1)])
        elif kind == "backend removed":
            yield kind, name, Vip("tcp", vip.ip, 80, vip.backends[1:])
        elif kind == "weight to 0":
            yield kind, name, Vip("tcp", vip.ip, 80, [backend(3 * i, 0), *vip.backends[1:]])
        elif kind == "VIP added":
            yield (kind, *make_vip(added + step))
        else:
            yield kind, name, None


def stats(values: list[float]) -> dict:
    """p50 / p99 (nearest rank) / max, in milliseconds."""
    s = sorted(values)
    rank = lambda q: s[min(len(s) - 1, max(0, int(q * len(s) + 0.999999) - 1))]  # noqa: E731
    return {"p50_ms": round(rank(0.50) * 1e3, 3), "p99_ms": round(rank(0.99) * 1e3, 3), "max_ms": round(s[-1] * 1e3, 3)}


def apply_changes(applier: L4Applier, changes) -> tuple[list[ApplyRecord], dict[str, int]]:
    records, kinds = [], {}
    for kind, name, vip in changes:
        applier.update({name: vip})
        record = applier.sync()
        if record is None or not record.ok:
            raise RuntimeError(f"{kind} {name}: {record}")
        records.append(record)
        kinds[kind] = kinds.get(kind, 0) + 1
    return records, kinds


def summary(records: list[ApplyRecord]) -> dict:
    return {
        "apply": stats([r.apply_s for r in records]),
        "sync": stats([r.total_s for r in records]),
        "plan": stats([r.plan_s for r in records]),
        "partial_syncs": sum(r.partial for r in records),
        "rebuilds": sum(bool(r.rebuilt) for r in records),
    }


def element_count(kernel: Kernel) -> int:
    return sum(len(s.vip_ips) + len(s.vips) + len(s.endpoints) for s in kernel.read().values())


def run_size(size: int, changes: int, reference: bool, seed: int) -> tuple[dict, dict | None]:
    netns = f"wfbench-{secrets.token_hex(3)}-{size}"
    subprocess.run(["ip", "netns", "add", netns], check=True, timeout=20)
    kernel = BenchKernel(netns)
    try:
        applier = L4Applier(kernel)  # no route device: nothing but nftables is touched
        desired = dict(make_vip(i) for i in range(size))
        t0 = time.perf_counter()
        applier.set_desired(desired, complete=True)
        convert_s = time.perf_counter() - t0
        cold = applier.sync()
        assert cold is not None and cold.ok and cold.rebuilt == ("ip",), cold
        rng, used = random.Random(seed), set()
        records, kinds = apply_changes(applier, change_stream(size, changes, rng, used))
        out = {
            "vips": size,
            "backends_per_vip": 3,
            "convert_s": round(convert_s, 3),
            "cold_rebuild": {"total_s": round(cold.total_s, 3), "plan_s": round(cold.plan_s, 3),
                             "apply_s": round(cold.apply_s, 3), "text_mb": round(cold.text_bytes / 1e6, 2)},
            "changes": kinds,
            **summary(records),
        }
        ref = None
        if reference:
            kernel.cli = True
            cli_records, _ = apply_changes(applier, change_stream(size, min(changes, size - len(used)), rng, used))
            kernel.cli = False
            ref = {"vips": size, "tool": "nft -f - (a process per transaction)", "changes": len(cli_records),
                   "apply": stats([r.apply_s for r in cli_records])}
            ref["in_process_over_cli_p50"] = round(out["apply"]["p50_ms"] / ref["apply"]["p50_ms"], 4)
        resync = applier.resync()
        out["resync"] = {"total_s": round(resync.total_s, 3), "read_s": round(resync.read_s, 3), "text_bytes": resync.text_bytes}
        out["elements"] = element_count(kernel)
        return out, ref
    finally:
        kernel.close()
        subprocess.run(["ip", "netns", "del", netns], check=False, timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,30000")
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--reference-size", type=int, default=10000,
                        help="size for the nft CLI reference; the first size when not in --sizes, none when 0")
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces, nftables)")
    if not sizes or any(not 0 < s <= MAX_SIZE for s in sizes) or not 0 < 2 * args.changes <= min(sizes):
        sys.exit(f"sizes must be 1..{MAX_SIZE}, changes 1..half the smallest size")
    ref_size = args.reference_size if args.reference_size in sizes or args.reference_size == 0 else sizes[0]
    # SIGTERM ends the run through the finally blocks, so no namespace is left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    results, reference = [], None
    for size in sizes:
        out, ref = run_size(size, args.changes, size == ref_size, args.seed)
        results.append(out)
        reference = ref or reference
    print(json.dumps({"bench": "l4lb_apply", "sizes": results, "reference": reference,
                      "wall_s": round(time.monotonic() - started, 1)}, indent=2))


if __name__ == "__main__":
    main()
