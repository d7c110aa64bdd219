"""What the convergence benches share: the pipeline's processes, their CPU, the churn they
drive in the simulator, and what the simulator really did (bench/l4lb_convergence.py,
bench/dns_convergence.py). Not a bench itself."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
from confluent_kafka import Consumer, TopicPartition

from bench.producer_latency import http, percentile
from runtime.kafka.reader import read_to_end
from schemas.catalog import Catalog

WAYFINDER = str(Path(sys.executable).with_name("wayfinder"))
CHURN_OVERRUN = 2.0  # a churn behind its schedule may take this many times its asked duration (+10 s)
DRAIN_QUIET_S = 10.0  # after the churn, wait for the pipeline until nothing more arrives for this long
DRAIN_TIMEOUT_S = 90.0
AT_PACE_MS = 1000.0  # a change the producer observed later than this after its stamp was held back


class TopicSizes:
    """Records written to a topic so far (sum of its partitions' end offsets)."""

    def __init__(self, bootstrap: str):
        self._consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex}",
                                   "enable.auto.commit": False})
        self._partitions: dict[str, list[int]] = {}

    def size(self, topic: str) -> int:
        if topic not in self._partitions:
            self._partitions[topic] = sorted(self._consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        return sum(self._consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1]
                   for p in self._partitions[topic])

    def close(self) -> None:
        self._consumer.close()


class Processes:
    """The pipeline's processes, each logging to its own file in `logs`."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.running: list[subprocess.Popen] = []
        self.names: dict[int, str] = {}  # pid -> name

    def spawn(self, name: str, *args: str) -> None:
        with open(self.logs / f"{name}.log", "wb") as log:
            self.running.append(subprocess.Popen([WAYFINDER, "--log-level", "info", *args], stdout=log, stderr=log))
        self.names[self.running[-1].pid] = name

    def check(self) -> None:
        for process in self.running:
            if process.poll() is not None:
                raise RuntimeError(f"{' '.join(process.args[3:5])} exited with {process.returncode}; logs in {self.logs}")

    def stop(self) -> None:
        for process in self.running:
            process.terminate()
        for process in self.running:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


class CpuMeter:
    """CPU time used between start() and stop(): the machine's, and each pipeline process's
    (this process is the node). Shows whether a fast churn saturates the cores, and who uses them."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, processes: Processes, bootstrap: str):
        self.processes = processes
        self.ports = {server.rsplit(":", 1)[1] for server in bootstrap.split(",")}

    def _sample(self) -> tuple[float, float, dict[str, float]]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        busy = (sum(fields[:8]) - fields[3] - fields[4]) / self.TICK  # all but idle and iowait
        used = {}
        for pid, name in self.processes.names.items():
            used[name] = self._cpu_s(pid)
        times = os.times()
        used["bench (the node)"] = times.user + times.system
        used["kafka"] = sum(self._cpu_s(pid) for pid in self._brokers)
        return time.monotonic(), busy, used

    def _cpu_s(self, pid: int) -> float:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(stat[11]) + int(stat[12])) / self.TICK

    def _find_brokers(self) -> list[int]:
        """The local brokers that serve the bootstrap (by the listeners in their properties)."""
        found = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                args = cmdline.read_bytes().decode(errors="replace").split("\0")
                if "kafka.Kafka" not in args:
                    continue
                properties = Path(args[args.index("kafka.Kafka") + 1]).read_text()
            except (OSError, IndexError):
                continue
            listeners = re.search(r"^listeners=(.*)$", properties, re.M)
            if listeners and any(f":{port}" in listeners.group(1).split(",")[0] for port in self.ports):
                found.append(int(cmdline.parent.name))
        return found

    def start(self) -> None:
        self._brokers = self._find_brokers()
        self._start = self._sample()

    def stop(self) -> dict:
        (t0, busy0, used0), (t1, busy1, used1) = self._start, self._sample()
        wall = t1 - t0
        return {"wall_s": round(wall, 2), "cpus": os.cpu_count(),
                "machine_busy_cpus": round((busy1 - busy0) / wall, 2) if wall else None,
                "cpu_s": {name: round(used1[name] - used0.get(name, 0.0), 2) for name in used1}}


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def run_churn(marathon_url: str, rate: float, seconds: float, processes: Processes) -> dict:
    """A churn of `rate` task state changes a second for `seconds`, in the simulator: rate / 2
    operations a second, each two task states (a launch is TASK_STAGING then TASK_RUNNING, a
    kill TASK_KILLING then TASK_KILLED). Waits for the churn to end, however late: a simulator
    that cannot keep the pace runs longer, and its report says how fast it really went. One
    that overruns CHURN_OVERRUN times the asked duration is stopped (``stopped_by_bench``)."""
    started, posted_at = time.monotonic(), time.time()
    url = f"{marathon_url}/sim/churn"
    churn = await asyncio.to_thread(http, "POST", url, {"rate": rate / 2, "seconds": seconds})
    # Each report carries every change so far: ask only once the churn should be over.
    await asyncio.sleep(seconds + 0.5)
    deadline = started + CHURN_OVERRUN * seconds + 10
    while True:
        processes.check()
        report = await asyncio.to_thread(http, "GET", f"{url}/{churn['id']}")
        if not report["running"]:
            return {**report, "stopped_by_bench": False, "posted_at": posted_at}
        if time.monotonic() > deadline:
            say(f"the churn overran {CHURN_OVERRUN:.0f}x its {seconds:.0f}s; stopping it")
            return {**await asyncio.to_thread(http, "DELETE", f"{url}/{churn['id']}"), "stopped_by_bench": True,
                    "posted_at": posted_at}
        await asyncio.sleep(2.0)


def measured_changes(report: dict, states: dict[str, bool]) -> set[tuple[str, bool]]:
    """(task id, present?) of each change the bench measures: a task entering one of `states`
    (state -> whether the task is then present)."""
    return {(c["task_id"], states[c["state"]]) for c in report["changes"]
            if c["kind"] == "task_state" and c["state"] in states}


async def drain(missing, processes: Processes) -> float:
    """Wait until missing() (measured changes not seen at the node yet) is 0, or has not
    dropped for DRAIN_QUIET_S, at most DRAIN_TIMEOUT_S; returns the seconds waited."""
    started = time.monotonic()
    last, since = missing(), started
    while last and time.monotonic() - since < DRAIN_QUIET_S and time.monotonic() - started < DRAIN_TIMEOUT_S:
        processes.check()
        await asyncio.sleep(0.2)
        now = missing()
        if now < last:
            last, since = now, time.monotonic()
    return round(time.monotonic() - started, 2)


def producer_observed(bootstrap: str, catalog: Catalog, since: float) -> dict[tuple[str, str], float]:
    """(task id, state) -> when the producer observed it, from the `events` topic (read once
    the run is over, so it costs the measurement nothing)."""
    found = {}
    for record in read_to_end(bootstrap, catalog.topic("events").name, 120.0):
        event = orjson.loads(record.value) if record.value else {}
        if event.get("entity") == "tasks" and event.get("observed_at", 0) >= since - 1:
            key = (event["id"], event["kind"].upper())  # task_running -> TASK_RUNNING
            found[key] = min(found.get(key, event["observed_at"]), event["observed_at"])
    return found


def churn_figures(report: dict, rate: float, seconds: float, drained_s: float,
                  observed: dict[tuple[str, str], float]) -> dict:
    """What the simulator really did, next to what was asked, and how late the producer saw it.

    The simulator stamps a change when its model changes; its event streams send it when its
    event loop gets to it. A simulator that makes changes back to back without yielding holds
    them and the producer sees them in a burst later: the stamps then show the asked pace, and
    only the stamp-to-producer delay shows the pace the pipeline really got."""
    states = [c for c in report["changes"] if c["kind"] == "task_state"]
    span = max(c["at"] for c in states) - min(c["at"] for c in states) if len(states) > 1 else 0.0
    asked_operations = int(rate / 2 * seconds)
    achieved = len(states) / span if span else None
    delays = [(observed[key] - c["at"]) * 1000 for c in states if (key := (c["task_id"], c["state"])) in observed]
    at_pace = bool(delays) and percentile(delays, 99) <= AT_PACE_MS
    return {
        "asked_task_state_changes_per_second": rate,
        "asked_s": seconds,
        "asked_operations": asked_operations,
        "operations": report["operations"],
        "task_state_changes": len(states),
        "ran_s": round(span, 2),
        "achieved_task_state_changes_per_second": round(achieved, 1) if achieved else None,
        # Simulator stamp -> the producer's observed_at (events topic), per task state change.
        "stamp_to_producer_ms": {"count": len(delays), "p50": rounded(percentile(delays, 50)),
                                 "p99": rounded(percentile(delays, 99)), "max": rounded(max(delays, default=None))},
        # Every operation done, at >= 95% of the asked pace, and delivered at that pace (p99 of
        # stamp -> producer within AT_PACE_MS), not held back and sent in a burst.
        "kept_up": (report["operations"] == asked_operations and achieved is not None and achieved >= 0.95 * rate
                    and at_pace),
        "stopped_by_bench": report.get("stopped_by_bench", False),
        "error": report.get("error"),
        "drain_after_churn_s": drained_s,
    }


def goal(rate: float, at_100: str) -> str:
    """The goal that applies at this rate (issue 9 asks p99 <= 50 ms at 1,000 changes a second)."""
    return "p99 <= 50 ms at 1,000 changes/s (issue 9)" if rate >= 1000 else at_100


def rounded(value):
    """Two decimals, and None stays None (a percentile of nothing)."""
    return round(value, 2) if value is not None else None
