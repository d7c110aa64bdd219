"""Processor throughput benchmark: task changes per second through `wayfinder process`, its
rebuild time and its memory, for clusters of N tasks in apps of K instances. Prints JSON.

    .venv/bin/python bench/processor_throughput.py [--bootstrap HOST:PORT | --kafka-base-port 33094]
        [--tasks 10000 100000] [--per-app 1 40 1000] [--changes N] [--stream-limit 60]
        [--rebuild-limit 300] [--source DIR]

One cell per (tasks, per-app) pair, each on a fresh namespace (its topics are deleted after
it). The cluster is bench/workload.py's: every task has one Marathon name, one discovery port
and one named-VIP label (all tasks of an app behind the app's VIP, each backend a distinct
agent ip:port), on 200 agents and one framework. Records go straight into the source topics
through a confluent-kafka producer with the producers' settings and headers (schema, trace,
observed time); no simulator, no producer process. The processor runs as its own process
(`wayfinder process`, its log in a temporary directory named on stderr).

- rebuild: the N tasks, the agents, the framework and the cluster record are in the topics
  first, with a synced `producer/mesos` mark at their end offsets (what a producer writes after
  its start-up sync). The clock runs from the processor's spawn to the first committed
  `processor` mark that is ready for `vips` and `dns` (no Marathon producer here, so never
  for `haproxy`) and whose positions reach the end offsets of every source topic: its outputs then reflect the whole cluster. The processor's VmRSS and VmHWM are read
  from /proc at that moment. The processor's own log line splits the time (read and derive,
  then the takeover that publishes the outputs).
- streaming: then M changes from Workload.churn (a task killed, i.e. tombstoned, and its
  replacement launched on another agent and port; round-robin across apps, so every app
  churns) are written as fast as the producer can. The clock runs from the first write to
  the first committed `processor` mark whose `tasks` positions reach the end offsets of the
  `tasks` topic, read after the last write was acknowledged (a heartbeat mark cannot count
  early: its positions are compared with those final offsets). changes/s is M over that time;
  derived records/s counts the committed records the processor wrote to `vips` and `dns`
  meanwhile (transaction markers excluded). A cell that does not finish within
  --stream-limit seconds reports `"completed": false` with the rate so far (from the newest
  mark's positions).

Goals (issue 9, on 2 vCPUs): >= 5,000 task changes a second streaming, at every app size; a
rebuild of 100,000 tasks <= 5 s; RSS at 100,000 tasks < 1 GB. The figures include the cost of
the writer and the broker on the same machine, as the goal does.

--source DIR runs the processor from another copy of the code (e.g. `git archive HEAD | tar -x
-C DIR`), to measure a committed version while the working tree changes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from confluent_kafka.admin import AdminClient  # noqa: E402

from bench.broker import bench_kafka  # noqa: E402
from bench.pipeline import say  # noqa: E402
from bench.processor_probes import OUTPUTS, SOURCES, MarkWatch, Offsets, SourceWriter  # noqa: E402
from bench.workload import Workload  # noqa: E402
from processors.readiness import reaches  # noqa: E402
from runtime.kafka.topics import ensure_topics  # noqa: E402
from schemas import codec  # noqa: E402
from schemas.catalog import Catalog  # noqa: E402
from schemas.mesos import Cluster, Master  # noqa: E402
from schemas.status import Mark, producer_key  # noqa: E402

WAYFINDER = str(Path(sys.executable).with_name("wayfinder"))
GOALS = {"streaming_changes_per_second_min": 5000, "rebuild_100k_tasks_s_max": 5.0, "rss_100k_tasks_mb_max": 1024}


def mesos_outputs_ready(mark: Mark) -> bool:
    """Ready for the outputs of Mesos sources. A processor older than ``ready_outputs`` (--source)
    derives only those, and says so with ``ready``."""
    return mark.ready or {"vips", "dns"} <= set(mark.ready_outputs)


def default_changes(per_app: int) -> int:
    """M for a cell: enough for a few seconds at the goal's rate, few enough for the processor
    of the issue (about 650 changes/s at 40 per app, about 50 at 1,000) to finish it."""
    return 2_000 if per_app >= 1000 else 20_000


def encode_all(workload: Workload, records) -> list[tuple[str, bytes | None]]:
    return [(key, codec.encode(task) if task is not None else None) for key, task in records]


def memory_mb(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    return {field: round(int(re.search(rf"{field}:\s+(\d+) kB", status).group(1)) / 1024, 1)
            for field in ("VmRSS", "VmHWM")}


def total(positions: dict[int, int]) -> int:
    return sum(positions.values())


# -- one cell -----------------------------------------------------------------------------------
def run_cell(args, bootstrap: str, tasks: int, per_app: int, logs: Path) -> dict:
    workload = Workload(tasks, per_app)
    changes = args.changes or default_changes(per_app)
    changes -= changes % 2  # kill + replacement pairs
    catalog = Catalog(f"bench{secrets.token_hex(4)}")
    ensure_topics(bootstrap, catalog)
    cell = {"tasks": tasks, "per_app": per_app, "apps": workload.apps, "namespace": catalog.namespace}
    say(f"--- {tasks} tasks, {per_app} per app ({workload.apps} apps), namespace {catalog.namespace}")
    writer = SourceWriter(bootstrap, catalog)
    offsets = Offsets(bootstrap, catalog)
    watch = MarkWatch(bootstrap, catalog)
    process, log = None, logs / f"processor-{tasks}-{per_app}.log"
    try:
        # -- the cluster, then the producer's synced mark at the ends of its tables
        started = time.monotonic()
        for key, agent in workload.agents().items():
            writer.write("agents", key, codec.encode(agent))
        for key, framework in workload.frameworks().items():
            writer.write("frameworks", key, codec.encode(framework))
        leader = Master("master1", "10.0.0.1")
        writer.write("cluster", "cluster", codec.encode(Cluster(leader=leader, masters=[leader])))
        for key, value in encode_all(workload, workload.initial()):
            writer.write("tasks", key, value)
        writer.flush()
        sources = offsets.ends(SOURCES)
        now = time.time()
        mark = Mark(role="producer", instance="bench-processor-throughput", started_at=now, heartbeat_at=now,
                    in_sync=True, synced_at=now, positions=sources)
        writer.write("status", producer_key("mesos"), codec.encode(mark))
        writer.flush()
        cell["load_write_s"] = round(time.monotonic() - started, 2)
        say(f"loaded {total(sources['tasks'])} task records in {cell['load_write_s']}s")
        # Churn records encoded now, so the burst below is the client's speed, not the encoder's.
        churn = encode_all(workload, workload.churn(changes))

        # -- rebuild: spawn -> a ready mark at the ends of every source
        env = dict(os.environ)
        if args.source:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(args.source), env.get("PYTHONPATH")]))
        with open(log, "wb") as out:
            spawned = time.monotonic()
            process = subprocess.Popen([WAYFINDER, "--log-level", "info", "process", "--bootstrap", bootstrap,
                                        "--namespace", catalog.namespace], stdout=out, stderr=subprocess.STDOUT,
                                       env=env, cwd=args.source or None)
        found = watch.wait(lambda m: mesos_outputs_ready(m) and reaches(m.positions, sources),
                           spawned + args.rebuild_limit, process)
        if found is None:
            cell["rebuild"] = {"completed": False, "limit_s": args.rebuild_limit, "rss_mb": memory_mb(process.pid)}
            say(f"rebuild did not finish within {args.rebuild_limit}s")
            return cell
        rebuilt_at, _ = found
        rss = memory_mb(process.pid)
        outputs_rebuilt = offsets.ends(OUTPUTS)
        cell["rebuild"] = {"completed": True, "s": round(rebuilt_at - spawned, 2), "rss_mb": rss}
        say(f"rebuild: {cell['rebuild']}")

        # -- streaming: M changes written at once; first write -> a mark at the tasks topic's end
        tasks_before = offsets.ends(["tasks"])["tasks"]
        first_write = time.monotonic()
        for key, value in churn:
            writer.write("tasks", key, value)
        writer.flush()
        written = time.monotonic()
        tasks_after = offsets.ends(["tasks"])["tasks"]  # after the last write: what the marks must reach
        assert total(tasks_after) - total(tasks_before) == len(churn), "the tasks topic grew by other records"
        target = {"tasks": tasks_after}
        found = watch.wait(lambda m: reaches(m.positions, target), first_write + args.stream_limit, process)
        completed = found is not None
        if found is None:
            found = watch.newest()
        reached_at, mark = found if found is not None else (first_write, None)
        reflected = mark.positions.get("tasks", {}) if mark is not None else {}
        outputs_after = offsets.ends(OUTPUTS)
        rss_after = memory_mb(process.pid)
        progressed = max(0, total({p: min(reflected.get(p, 0), tasks_after[p])
                                   for p in tasks_after}) - total(tasks_before))
        elapsed = (reached_at if completed else time.monotonic()) - first_write
        # Stop the processor before counting, so the count takes no CPU from it.
        stop(process)
        process = None
        derived = {alias: offsets.count(alias, outputs_rebuilt[alias], outputs_after[alias]) for alias in OUTPUTS}
        cell["rebuild"]["derived_records"] = {alias: offsets.count(alias, {}, outputs_rebuilt[alias])
                                              for alias in OUTPUTS}
        cell["streaming"] = {
            "completed": completed,
            "changes": len(churn),
            "changes_reflected": progressed,
            "write_s": round(written - first_write, 3),
            "s": round(elapsed, 3),
            "changes_per_second": round(progressed / elapsed, 1) if elapsed > 0 else None,
            "derived_records": derived,
            "derived_records_per_second": round(sum(derived.values()) / elapsed, 1) if elapsed > 0 else None,
            "rss_mb_after": rss_after,
        }
        if not completed:
            cell["streaming"]["limit_s"] = args.stream_limit
        say(f"streaming: {cell['streaming']}")
        return cell
    finally:
        if process is not None:
            stop(process)
        if "rebuild" in cell:  # read once the processor has stopped: it logs after committing
            cell["rebuild"]["processor_log"] = split_times(log)
        watch.close()
        offsets.close()
        delete_topics(bootstrap, catalog)


def split_times(log: Path) -> dict:
    """The processor's own account of its start: rebuilt in X s, active after Y s."""
    text = log.read_text(errors="replace")
    found = {}
    if match := re.search(r"rebuilt in ([\d.]+)s", text):
        found["rebuilt_in_s"] = float(match.group(1))
    if match := re.search(r"is active .* after ([\d.]+)s: .*?(\d+) records published", text):
        found["takeover_s"], found["takeover_records"] = float(match.group(1)), int(match.group(2))
    return found


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def delete_topics(bootstrap: str, catalog: Catalog) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics([t.name for t in catalog.topics], operation_timeout=30).values():
        try:
            future.result(60)
        except Exception as error:  # noqa: BLE001 - leftover topics only cost disk
            say(f"deleting a topic: {error}")


# -- the report ---------------------------------------------------------------------------------
def verdicts(cells: list[dict]) -> dict:
    streaming = [c for c in cells if "streaming" in c]
    big = [c for c in cells if c["tasks"] >= 100_000 and "rebuild" in c]
    return {
        "streaming_every_app_size": (all(c["streaming"]["completed"] and c["streaming"]["changes_per_second"]
                                         >= GOALS["streaming_changes_per_second_min"] for c in streaming)
                                     if streaming else None),
        "rebuild_100k_tasks": (all(c["rebuild"]["completed"] and c["rebuild"]["s"] <= GOALS["rebuild_100k_tasks_s_max"]
                                   for c in big) if big else None),
        "rss_100k_tasks": (all(c["rebuild"]["rss_mb"]["VmHWM"] < GOALS["rss_100k_tasks_mb_max"] for c in big)
                           if big else None),
    }


def version(source: Path | None) -> dict:
    """Which processor code runs: read at the start (the checkout may move during a long run).
    A --source copy without git history (git archive) has no commit to report."""
    where = source or REPO
    found = {"source": str(where)}
    try:
        found["commit"] = subprocess.run(["git", "-C", str(where), "rev-parse", "--short", "HEAD"], capture_output=True,
                                         text=True, timeout=10).stdout.strip() or "unknown (not a git checkout)"
        if source is None:
            dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "processors", "runtime",
                                    "schemas"], capture_output=True, text=True, timeout=10).stdout.split("\n")
            found["uncommitted_changes"] = [line[3:] for line in dirty if line.strip()]
    except (OSError, subprocess.SubprocessError):
        pass
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", default=os.environ.get("WAYFINDER_BOOTSTRAP"))
    parser.add_argument("--kafka-base-port", type=int, default=33094,
                        help="without --bootstrap: the broker this script starts uses PORT and PORT+1")
    parser.add_argument("--tasks", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--per-app", type=int, nargs="+", default=[1, 40, 1000])
    parser.add_argument("--changes", type=int, default=0,
                        help="streaming changes per cell (default: 20,000; 2,000 for apps of 1,000 or more)")
    parser.add_argument("--stream-limit", type=float, default=60.0, help="seconds a streaming run may take")
    parser.add_argument("--rebuild-limit", type=float, default=300.0, help="seconds a rebuild may take")
    parser.add_argument("--source", type=Path, help="run the processor from this copy of the code")
    args = parser.parse_args()
    if args.source:
        args.source = args.source.resolve()
    processor = version(args.source)
    logs = Path(tempfile.mkdtemp(prefix="wayfinder-bench-throughput-"))
    say(f"processor logs: {logs}")
    cells, failed = [], False
    with bench_kafka(args.bootstrap, base_port=args.kafka_base_port) as bootstrap:
        for tasks in args.tasks:
            for per_app in args.per_app:
                try:
                    cells.append(run_cell(args, bootstrap, tasks, per_app, logs))
                except Exception as error:  # noqa: BLE001 - one failed cell must not lose the others
                    failed = True
                    say(f"cell {tasks}x{per_app} failed: {type(error).__name__}: {error}")
                    cells.append({"tasks": tasks, "per_app": per_app, "error": f"{type(error).__name__}: {error}"})
    print(json.dumps({
        "benchmark": "processor throughput",
        "goals": {"streaming": ">= 5,000 task changes/s at every app size (2 vCPUs)",
                  "rebuild": "<= 5 s for 100,000 tasks", "rss": "< 1 GB at 100,000 tasks"},
        "processor": processor,
        "cpus": os.cpu_count(),
        "cells": cells,
        "goals_met": verdicts(cells),
    }, indent=2))
    if not failed:
        shutil.rmtree(logs, ignore_errors=True)  # kept when a cell failed, for the processor's log


if __name__ == "__main__":
    main()
