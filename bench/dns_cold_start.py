"""DNS cold-start benchmark: a node from empty to answering every record of N tasks. Prints JSON.

    .venv/bin/python bench/dns_cold_start.py [--bootstrap HOST:PORT] [--tasks 100000]

Setup (not timed): the DNS derivation turns N running Marathon tasks (100 instances per app,
200 agents) into record sets, published to a fresh ``dns`` topic. Timed: ``wayfinder node
--roles dns`` starts as its own process; the clock runs from the spawn to ``ready.spartan``
answering (the node answers cluster names only once it has caught up). Then dnsperf asks
every A name once and every answer must be NOERROR; the node's peak RSS (VmHWM) is read
from /proc when it is ready and again after that sweep (which fills the fast path's cache).
Goal: <= 10 s and <= 300 MB at 100,000 tasks.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import dns.exception  # noqa: E402
import dns.message  # noqa: E402
import dns.query  # noqa: E402
import dns.rcode  # noqa: E402

from processors.dns.config import PUBLISHED  # noqa: E402
from processors.dns.table import DnsTable  # noqa: E402
from runtime.kafka.topics import ensure_topics  # noqa: E402
from runtime.kafka.writer import KafkaSink  # noqa: E402
from schemas import codec  # noqa: E402
from schemas.catalog import Catalog  # noqa: E402
from schemas.headers import Observation  # noqa: E402
from schemas.status import PROCESSOR_KEY, Mark  # noqa: E402
from schemas.mesos import Agent, Cluster, Discovery, DiscoveryPort, Framework, Master, PortRange, Task, TaskStatus  # noqa: E402

from bench.broker import bench_kafka  # noqa: E402
from bench.producer_latency import free_port  # noqa: E402

WAYFINDER = str(Path(sys.executable).with_name("wayfinder"))
AGENTS, PER_APP = 200, 100
FRAMEWORK_ID = "bench-marathon-0000"


def cluster_tables(tasks: int) -> DnsTable:
    """The DNS table of `tasks` running Marathon tasks, built through the real derivation with
    what the processor publishes (one batch, as the processor's rebuild does)."""
    table = DnsTable(PUBLISHED)
    table.put_cluster("cluster", Cluster(leader=Master("master1", "10.0.0.1"),
                                         masters=[Master("master1", "10.0.0.1")]))
    table.put_framework(FRAMEWORK_ID, Framework(id=FRAMEWORK_ID, name="marathon", hostname="10.0.0.1",
                                                ip="10.0.0.1", port=8080))
    for a in range(AGENTS):
        agent_id = f"bench-agent-S{a}"
        table.put_agent(agent_id, Agent(id=agent_id, hostname=f"10.1.{a // 250}.{a % 250 + 1}",
                                        ip=f"10.1.{a // 250}.{a % 250 + 1}"))
    batch = []
    for i in range(tasks):
        app, agent = i // PER_APP, i % AGENTS
        port = 20000 + i % 10000
        name = f"app{app}"
        task_id = f"{name}.{i:08d}-bench"
        batch.append(("task", task_id, Task(
            id=task_id, name=name, framework_id=FRAMEWORK_ID, agent_id=f"bench-agent-S{agent}", state="TASK_RUNNING",
            statuses=[TaskStatus(state="TASK_RUNNING", timestamp=1764115200.0)],
            discovery=Discovery(name=name, ports=[DiscoveryPort(number=port, protocol="tcp", name="http")]),
            port_ranges=[PortRange(port, port)])))
    table.put_many(batch)
    return table


def publish(bootstrap: str, catalog: Catalog, table: DnsTable) -> int:
    """The record sets, then a ready processor mark that reflects them: the node answers
    cluster names only past such a mark (README: readiness is a chain)."""
    topic, status = catalog.topic("dns"), catalog.topic("status")
    headers = Observation.now().headers(topic.schema_id)
    sink = KafkaSink(bootstrap, client_id="bench-dns-cold-start")
    try:
        for key, record_set in table.records.items():
            sink.publish(topic.name, key, codec.encode(record_set), headers)
        sink.flush(120)
        now = time.time()
        mark = Mark("processor", "bench-dns-cold-start", now, now, True, synced_at=now, ready=True)
        sink.publish(status.name, PROCESSOR_KEY, codec.encode(mark), Observation.now().headers(status.schema_id))
        sink.flush(30)
    finally:
        sink.close()
    return len(table.records)


def ready(port: int) -> bool:
    try:
        reply = dns.query.udp(dns.message.make_query("ready.spartan.", "A"), "127.0.0.1", port=port, timeout=0.2)
    except (dns.exception.Timeout, OSError):
        return False
    return reply.rcode() == dns.rcode.NOERROR and bool(reply.answer)


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


def ask_every_name(port: int, names: list[str], workdir: Path) -> dict:
    queries = workdir / "queries.txt"
    queries.write_text("".join(f"{name} A\n" for name in names))
    done = subprocess.run(["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries), "-n", "1",
                           "-c", "1", "-q", "20", "-t", "5"], capture_output=True, text=True, timeout=600)
    line = re.search(r"Response codes:(.*)$", done.stdout, re.M)
    codes = dict(re.findall(r"([A-Z]+) (\d+) \(", line.group(1))) if line else {}
    lost = re.search(r"Queries lost:\s+(\d+)", done.stdout)
    return {"asked": len(names), "noerror": int(codes.get("NOERROR", 0)),
            "other_rcodes": {k: int(v) for k, v in codes.items() if k != "NOERROR"},
            "lost": int(lost.group(1)) if lost else None}


def measure(args, bootstrap: str) -> dict:
    catalog = Catalog(f"bench{secrets.token_hex(4)}")
    ensure_topics(bootstrap, catalog)
    started = time.monotonic()
    table = cluster_tables(args.tasks)
    derived_s = time.monotonic() - started
    record_sets = publish(bootstrap, catalog, table)
    names = sorted({rs.name for rs in table.records.values() if rs.type == "A"})
    del table
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="wayfinder-bench-dns-"))
    log = (workdir / "node.log").open("wb")
    spawned = time.monotonic()
    node = subprocess.Popen([WAYFINDER, "--log-level", "info", "node", "--bootstrap", bootstrap,
                             "--namespace", catalog.namespace, "--node-id", "bench", "--agent-ip", "10.0.0.9",
                             "--roles", "dns", "--dns-listen", f"127.0.0.1:{port}"], stdout=log, stderr=log)
    try:
        deadline = spawned + args.timeout
        while not ready(port):
            if node.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the node did not become ready; see {workdir / 'node.log'}")
            time.sleep(0.05)
        cold_start_s = time.monotonic() - spawned
        rss_ready = peak_rss_mb(node.pid)
        answered = ask_every_name(port, names, workdir)
        rss = peak_rss_mb(node.pid)
    finally:
        node.terminate()
        try:
            node.wait(30)
        except subprocess.TimeoutExpired:
            node.kill()
        log.close()
    progress_lines = [line for line in (workdir / "node.log").read_text().splitlines() if "catching up" in line]
    shutil.rmtree(workdir)  # kept only when the run failed, for the node's log
    return {
        "benchmark": "dns cold start",
        "goal": "<= 10 s to answer every record of 100,000 tasks, RSS <= 300 MB",
        "tasks": args.tasks,
        "record_sets": record_sets,
        "a_names": len(names),
        "derivation_s": round(derived_s, 2),
        "cold_start_s": round(cold_start_s, 2),
        "peak_rss_mb_when_ready": round(rss_ready, 1),
        # The fast path keeps a pre-encoded reply per name asked (up to 65,536 of them).
        "peak_rss_mb_after_asking_every_name": round(rss, 1),
        "every_name_answered": answered,
        "progress_lines_logged": len(progress_lines),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default=os.environ.get("WAYFINDER_BOOTSTRAP"))
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    with bench_kafka(args.bootstrap, base_port=47292) as bootstrap:
        print(json.dumps(measure(args, bootstrap), indent=2))


if __name__ == "__main__":
    main()
