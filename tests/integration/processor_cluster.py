"""Processors as real `wayfinder process` subprocesses on one namespace, fed by records written
straight into the source topics: for the failover tests and bench/processor_failover.py.

No simulator and no producer: the test writes agents, a framework and tasks (apps with named
VIPs) itself, so a change's moment is known exactly and nothing else moves the tables.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import msgspec

from processors.replay import fresh_outputs, processor_stages
from runtime.kafka.reader import read_table, read_to_end
from runtime.kafka.topics import ensure_topics
from runtime.kafka.writer import KafkaSink
from schemas import codec
from schemas.catalog import Catalog
from schemas.headers import Observation
from schemas.mesos import Agent, Discovery, DiscoveryPort, Framework, NetworkInfo, Task, TaskStatus
from schemas.status import PROCESSOR_KEY, Mark, producer_key

WAYFINDER = str(Path(sys.executable).with_name("wayfinder"))
# Every stage's sources and outputs (haproxy stays empty: no Marathon records here).
SOURCES = tuple(dict.fromkeys(alias for stage in processor_stages(Catalog()) for alias in stage.sources))
OUTPUTS = tuple(stage.output for stage in processor_stages(Catalog()))
AGENTS = 4
FRAMEWORK = Framework(id="fw-marathon", name="marathon", hostname="10.0.0.1", ip="10.0.0.1", port=8080)


def agent(n: int) -> Agent:
    return Agent(id=f"agent-{n}", hostname=f"10.9.0.{n + 1}", ip=f"10.9.0.{n + 1}")


def app_task(app: int, serial: int) -> Task:
    """A running task of app `app`, behind the named VIP /app<app>:80, on the agent's address."""
    host = agent(serial % AGENTS)
    port = DiscoveryPort(20000 + serial % 1000, "tcp", labels={"VIP_0": f"/app{app}:80"})
    return Task(id=f"app{app}.{serial:06d}", name=f"app{app}", framework_id=FRAMEWORK.id, agent_id=host.id,
                state="TASK_RUNNING",
                statuses=[TaskStatus("TASK_RUNNING", 1.0, network_infos=[NetworkInfo(ip_addresses=[host.ip])])],
                discovery=Discovery(visibility="FRAMEWORK", name=f"app{app}", ports=[port]))


class SourceWriter:
    """Writes source records as a producer would (idempotent, with trace headers), and churns
    tasks: each step launches a task of a random app or kills one."""

    def __init__(self, bootstrap: str, catalog: Catalog, apps: int, seed: int = 7):
        self.catalog, self.apps = catalog, apps
        self.sink = KafkaSink(bootstrap, client_id="failover-test")
        self.random = random.Random(seed)
        self.running: dict[str, Task] = {}
        self._serial = 0

    def write(self, alias: str, key: str, entity: msgspec.Struct | None) -> None:
        topic = self.catalog.topic(alias)
        value = codec.encode(entity) if entity is not None else None
        self.sink.publish(topic.name, key, value, Observation.now().headers(topic.schema_id))

    def load(self, tasks_per_app: int = 2) -> None:
        for n in range(AGENTS):
            self.write("agents", agent(n).id, agent(n))
        self.write("frameworks", FRAMEWORK.id, FRAMEWORK)
        for app in range(self.apps):
            for _ in range(tasks_per_app):
                self.launch(app)
        self.sink.flush()

    def launch(self, app: int) -> Task:
        self._serial += 1
        task = app_task(app, self._serial)
        self.running[task.key] = task
        self.write("tasks", task.key, task)
        return task

    def kill(self, key: str) -> None:
        del self.running[key]
        self.write("tasks", key, None)

    def churn(self, steps: int) -> None:
        for _ in range(steps):
            if self.running and self.random.random() < 0.45:
                self.kill(self.random.choice(sorted(self.running)))
            else:
                self.launch(self.random.randrange(self.apps))
        self.sink.flush()

    def mark_producer_synced(self, positions: dict[str, dict[int, int]], source: str = "mesos") -> None:
        """The mark a synced producer writes (the producers' own code writes it in production)."""
        now = time.time()
        mark = Mark(role="producer", instance="failover-test", started_at=now, heartbeat_at=now, in_sync=True,
                    synced_at=now, positions=positions)
        topic = self.catalog.topic("status")
        self.sink.publish(topic.name, producer_key(source), msgspec.json.encode(mark), Observation.now().headers(topic.schema_id))
        self.sink.flush()

    def close(self) -> None:
        self.sink.close()


class ProcessorProcesses:
    """`wayfinder process` subprocesses of one namespace, each logging to its own file."""

    def __init__(self, bootstrap: str, catalog: Catalog, logs: Path, session_timeout_ms: int):
        self.bootstrap, self.catalog, self.logs = bootstrap, catalog, logs
        self.session_timeout_ms = session_timeout_ms
        self.running: dict[int, subprocess.Popen] = {}
        self.log_of: dict[int, Path] = {}
        self._started = 0

    def start(self) -> int:
        self._started += 1
        log = self.logs / f"processor-{self._started}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [WAYFINDER, "--log-level", "info", "process", "--bootstrap", self.bootstrap, "--namespace",
                 self.catalog.namespace, "--session-timeout-ms", str(self.session_timeout_ms)],
                stdout=out, stderr=subprocess.STDOUT)
        self.running[process.pid] = process
        self.log_of[process.pid] = log
        return process.pid

    def signal(self, pid: int, sig: int) -> None:
        os.kill(pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            self.running.pop(pid).wait(30)

    def log(self, pid: int) -> str:
        return self.log_of[pid].read_text(errors="replace")

    def stop_all(self) -> None:
        for pid, process in list(self.running.items()):
            os.kill(pid, signal.SIGCONT)
            process.terminate()
        for process in self.running.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        self.running.clear()


def new_catalog(bootstrap: str) -> Catalog:
    catalog = Catalog(f"f{uuid.uuid4().hex[:10]}")
    ensure_topics(bootstrap, catalog)
    return catalog


def processor_marks(bootstrap: str, catalog: Catalog) -> list[Mark]:
    """Every committed processor mark, in the order they were written."""
    return [msgspec.json.decode(r.value, type=Mark) for r in read_to_end(bootstrap, catalog.topic("status").name)
            if r.key == PROCESSOR_KEY and r.value is not None]


def pid_of(mark: Mark) -> int:
    return int(mark.instance.split(":")[1])


def outputs(bootstrap: str, catalog: Catalog) -> dict[str, dict[str, bytes]]:
    return {alias: read_table(bootstrap, catalog.topic(alias).name) for alias in OUTPUTS}


def expected_outputs(bootstrap: str, catalog: Catalog, published: dict[str, dict[str, bytes]]) -> dict[str, dict[str, bytes]]:
    """A fresh derivation from the source topics, with the pure stages."""
    sources = {alias: read_table(bootstrap, catalog.topic(alias).name) for alias in SOURCES}
    return fresh_outputs(catalog, sources, published)


def named_addresses(vips: dict[str, bytes]) -> dict[str, str]:
    """Named VIP -> its address, from the vips table."""
    found = {}
    for value in vips.values():
        vip = msgspec.json.decode(value)
        if vip.get("name"):
            found[vip["name"]] = vip["ip"]
    return found


def backends(vips: dict[str, bytes]) -> set[str]:
    """Task ids of every backend in the vips table."""
    return {b["task_id"] for value in vips.values() for b in msgspec.json.decode(value)["backends"]}


def wait_for(check, timeout: float, what: str, every: float = 0.05):
    """Calls `check` until it returns something truthy (returned); fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(every)
