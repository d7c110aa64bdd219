"""DNS throughput: our node DNS server against dnsmasq, same names, same run. Prints JSON.
Not a test: the machines are shared and noisy (reference/performance.md: ±15 % on qps).

    .venv/bin/python bench/dns_throughput.py [--names 10000] [--seconds 10]

Both servers get `--names` A records `svcN.marathon.mesos.` -> 10.x.y.z: ours in a ZoneSet
marked ready behind the real `DnsServer` (fast path, then Answerer) in its own process, so the
bench does not share its GIL; dnsmasq from `host-record` lines in its own conf file, with
`--no-resolv --no-hosts`. Each server is pinned to CPU 0 and dnsperf to CPU 1 when there are
two CPUs, as in reference/performance.md. Per server:
- saturation: `dnsperf -c 1 -q 100 -l SECONDS` over the query file: qps, average and max
  latency, lost queries, rcodes, and the server's CPU (utime+stime over the run, 100 = a core)
  also per query: when the box is busy, dnsperf rather than the server may set the qps, and
  CPU per query is then the steadier figure of server cost;
- latency percentiles: dnsperf 2.10 prints no histogram, so a second run at a fixed rate
  (`--latency-qps`, default 20,000: goal G4 says p99 <= 1 ms there) with `-v`, which prints
  every query's latency; p50 and p99 come from those lines. Saturation percentiles are not
  reported: with 100 queries outstanding they measure dnsperf's own queue.
`ratio` is ours qps / dnsmasq qps. `--loops` compares our server on several event loops
(asyncio, uvloop) in the same run; the first one is `ours`. `--churn N` adds a run of ours
while N names a second change (each change invalidates only its name's cached answers).

Ports 127.0.0.1:42201 (ours, UDP and TCP) and 42202 (dnsmasq) unless `--port`. Every process
started here is stopped in a finally block, and the temp dir is removed.

`--vs unbound`: DNS on all cores. Ours is the real node, `wayfinder node --roles dns
--dns-workers N` (N = `--workers`, default one per CPU), its zones loaded from the `dns` topic
of a Kafka (`--bootstrap`, else a broker of its own on port 47492) under a namespace of its
own; against unbound with `num-threads: N` and `so-reuseport: yes`, the same names as
`local-data` in a temp config. dnsperf runs with `--clients` sockets (default 8 per worker:
SO_REUSEPORT spreads by source port, so one socket would reach one worker or thread only).
Servers are pinned to CPUs 0..N-1 and dnsperf to the rest when there are more than N CPUs;
otherwise nothing is pinned (`pinned` says which). CPU is the whole server: the node and its
workers, or unbound's threads. Ports 43150 (ours) and 43151 (unbound) unless `--port`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DNSMASQ, UNBOUND = "/usr/sbin/dnsmasq", "/usr/sbin/unbound"
TTL = 5

from bench import dnsperf_runs  # noqa: E402
from bench.dnsperf_runs import (  # noqa: E402
    DNSPERF, SERVER_CPU, measure, pin, stop, tree_cpu_seconds, wait_answering)


def address(i: int) -> str:
    n = i + 1
    return f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


def names(count: int) -> list[str]:
    return [f"svc{i}.marathon.mesos." for i in range(count)]


# -- our server, in its own process ---------------------------------------------------------

def serve(port: int, count: int, loop: str, churn: int) -> None:
    """Run the node's DNS server with `count` names until stdin closes or SIGTERM; with
    `churn`, that many names per second get a new address meanwhile (on the serving loop, as
    the node applies DNS table changes)."""
    from appliers.dns.answer import Answerer
    from appliers.dns.records import record
    from appliers.dns.server import DnsServer
    from appliers.dns.zone import ZoneSet

    zones = ZoneSet()
    zones.replace(record(name, "A", TTL, address(i)) for i, name in enumerate(names(count)))
    zones.ready = True

    async def main() -> None:
        server = DnsServer(Answerer(zones), "127.0.0.1", port)
        await server.start()
        stop = asyncio.Event()
        running = asyncio.get_running_loop()
        running.add_signal_handler(signal.SIGTERM, stop.set)
        running.add_reader(sys.stdin.fileno(), stop.set)  # the bench went away: stop too
        changing = running.create_task(change(zones, count, churn)) if churn else None
        print("ready", flush=True)
        try:
            await stop.wait()
        finally:
            if changing is not None:
                changing.cancel()
            await server.stop()
            print(json.dumps(server.counters.snapshot()), flush=True)

    if loop == "uvloop":
        import uvloop
        uvloop.run(main())
    else:
        asyncio.run(main())


async def change(zones, count: int, per_second: int) -> None:
    """Upsert `per_second` random names a second with a random address, in 10 ms ticks, until
    cancelled."""
    from appliers.dns.records import record

    rng = random.Random(7)
    due = 0.0
    while True:  # ends when the server stops and cancels it
        await asyncio.sleep(0.01)
        due += per_second / 100
        for _ in range(int(due)):
            name = f"svc{rng.randrange(count)}.marathon.mesos."
            zones.upsert(name, "A", [record(name, "A", TTL, address(rng.randrange(count)))])
        due -= int(due)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--names", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--latency-qps", type=int, default=20_000)
    parser.add_argument("--loops", default="uvloop,asyncio",
                        help="event loops to run our server on, comma-separated; first = ours")
    parser.add_argument("--churn", type=int, default=0,
                        help="also run ours (first loop) with this many name changes per second")
    parser.add_argument("--rounds", type=int, default=3, help="runs per server; medians reported")
    parser.add_argument("--no-pin", action="store_true",
                        help="let the scheduler place servers and dnsperf (busy shared boxes)")
    parser.add_argument("--port", type=int, default=None,
                        help="ours; the reference gets port + 1 (default 42201, 43150 with --vs unbound)")
    parser.add_argument("--vs", choices=["dnsmasq", "unbound"], default="dnsmasq",
                        help="unbound: the node with --dns-workers against unbound with as many threads")
    parser.add_argument("--workers", default="auto", help="--vs unbound: DNS workers and unbound threads (N or auto)")
    parser.add_argument("--clients", type=int, default=None, help="--vs unbound: dnsperf sockets (default 8 per worker)")
    parser.add_argument("--bootstrap", default=None, help="--vs unbound: the Kafka to use (default: start one)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--loop", default="uvloop", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.port, args.names, args.loop, args.churn)
        return
    if args.no_pin:
        dnsperf_runs.PINNING = False
    if args.vs == "unbound":
        if not 0 < args.names <= 1_000_000 or not 0 < args.rounds <= 20:
            parser.error("--names must be in 1..1,000,000 and --rounds in 1..20")
        from appliers.options import dns_workers_from

        try:
            workers = dns_workers_from(args.workers)
        except ValueError as error:
            parser.error(str(error))
        cores_main(args, workers, args.port or 43150)
        return
    args.port = args.port or 42201
    if not 0 < args.names <= 1_000_000 or not 0 < args.rounds <= 20:
        parser.error("--names must be in 1..1,000,000 and --rounds in 1..20")
    for tool in (DNSPERF, DNSMASQ):
        if not os.access(tool, os.X_OK):
            sys.exit(f"{tool} is not installed")

    load_before = os.getloadavg()[0]  # other work on the box skews every figure: say how much
    scratch = Path(tempfile.mkdtemp(prefix="dnsfast-bench-"))
    results: dict[str, dict] = {}
    try:
        queryfile = scratch / "queries.txt"
        queryfile.write_text("".join(f"{name} A\n" for name in names(args.names)))
        conf = scratch / "dnsmasq.conf"
        conf.write_text("".join(f"host-record={name[:-1]},{address(i)}\n"
                                for i, name in enumerate(names(args.names))))
        for _ in range(args.rounds):  # alternated, so drift in the box's load hits all alike
            loops = [(loop, 0) for loop in args.loops.split(",")]
            if args.churn:
                loops.append((loops[0][0], args.churn))
            for loop, churn in loops:
                label = f"{loop}_churn{churn}" if churn else loop
                ours = None
                try:
                    ours = subprocess.Popen(
                        [*pin(SERVER_CPU), sys.executable, __file__, "--serve", "--port",
                         str(args.port), "--names", str(args.names), "--loop", loop,
                         "--churn", str(churn)],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                        env={**os.environ, "PYTHONPATH": str(REPO)})
                    run = measure(f"wayfinder DnsServer ({label})", ours, args.port, queryfile,
                                  args.seconds, args.latency_qps)
                finally:
                    out = stop(ours)
                counters = [line for line in out.splitlines() if line.startswith("{")]
                if counters:
                    run["server_counters"] = json.loads(counters[-1])
                results.setdefault(f"ours_{label}", []).append(run)
            dnsmasq = None
            try:
                dnsmasq = subprocess.Popen(
                    [*pin(SERVER_CPU), DNSMASQ, "--keep-in-foreground", "--no-resolv", "--no-hosts",
                     f"--conf-file={conf}", f"--port={args.port + 1}", "--listen-address=127.0.0.1",
                     "--bind-interfaces", "--pid-file=", f"--local-ttl={TTL}"],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                results.setdefault("dnsmasq", []).append(measure(
                    "dnsmasq", dnsmasq, args.port + 1, queryfile, args.seconds, args.latency_qps))
            finally:
                stop(dnsmasq)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    best = {key: median_run(runs) for key, runs in results.items()}
    first = f"ours_{args.loops.split(',')[0]}"
    report = {"bench": "dns_throughput", "names": args.names, "seconds": args.seconds,
              "churn_per_s": args.churn,
              "rounds": args.rounds, "cpus": os.cpu_count(), "pinned": bool(pin(SERVER_CPU)),
              "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
              "ours": best[first], "dnsmasq": best["dnsmasq"],
              "ratio": round(best[first]["qps"] / best["dnsmasq"]["qps"], 3),
              "qps_per_round": {key: [run["qps"] for run in runs] for key, runs in results.items()},
              "loops": {key[5:]: value for key, value in best.items() if key.startswith("ours_")}}
    print(json.dumps(report, indent=2))


# -- all cores: the node with DNS workers against unbound with as many threads ---------------

def publish_names(bootstrap: str, namespace: str, count: int) -> None:
    """The bench's names as the processor would write them into the dns topic, and a ready
    processor mark (what makes a node ready)."""
    from runtime.kafka.topics import ensure_topics
    from runtime.kafka.writer import KafkaSink
    from schemas import codec
    from schemas.catalog import Catalog
    from schemas.dns import RecordSet, record_set_key
    from schemas.headers import Observation
    from schemas.status import PROCESSOR_KEY, Mark

    catalog = Catalog(namespace)
    ensure_topics(bootstrap, catalog)
    sink = KafkaSink(bootstrap)
    try:
        topic = catalog.topic("dns")
        headers = Observation.now().headers(topic.schema_id)
        for i, name in enumerate(names(count)):
            sink.publish(topic.name, record_set_key(name, "A"),
                         codec.encode(RecordSet(name, "A", TTL, [address(i)], "marathon", [f"svc{i}.1"])), headers)
        now = time.time()
        status = catalog.topic("status")
        sink.publish(status.name, PROCESSOR_KEY,
                     codec.encode(Mark("processor", "bench", now, now, True, synced_at=now, ready=True)),
                     Observation.now().headers(status.schema_id))
        sink.flush()
    finally:
        sink.close()


def wait_every_worker(port: int, process: subprocess.Popen, spread: int = 64) -> None:
    """Until `spread` probes, each from a new socket (so SO_REUSEPORT sends them to every
    worker) and each waiting out SERVFAIL (bounded by START_TIMEOUT), got svc0's answer."""
    for _ in range(spread):
        wait_answering(port, process)


def unbound_config(directory: Path, port: int, threads: int, count: int) -> Path:
    conf = directory / "unbound.conf"
    lines = ["server:", "  interface: 127.0.0.1", f"  port: {port}", f"  num-threads: {threads}",
             "  so-reuseport: yes", "  do-daemonize: no", "  use-syslog: no", '  logfile: ""',
             '  chroot: ""', '  username: ""', f'  directory: "{directory}"', '  pidfile: ""',
             "  verbosity: 0", "  do-ip6: no", "  access-control: 127.0.0.0/8 allow",
             '  local-zone: "marathon.mesos." static']
    lines += [f'  local-data: "{name} {TTL} IN A {address(i)}"' for i, name in enumerate(names(count))]
    lines += ["remote-control:", "  control-enable: no"]
    conf.write_text("\n".join(lines) + "\n")
    return conf


def cores_main(args, workers: int, port: int) -> None:
    from bench.broker import bench_kafka

    for tool in (DNSPERF, UNBOUND):
        if not os.access(tool, os.X_OK):
            sys.exit(f"{tool} is not installed (make setup installs it)")
    clients = args.clients or 8 * workers
    outstanding = 100 * workers
    servers = ",".join(str(cpu) for cpu in range(workers))
    client_cpus = f"{workers}-{os.cpu_count() - 1}" if (os.cpu_count() or 1) > workers else "0"
    server_pin = pin(servers, workers + 1)
    client_pin = pin(client_cpus, workers + 1)
    load_before = os.getloadavg()[0]
    scratch = Path(tempfile.mkdtemp(prefix="dnscores-bench-"))
    results: dict[str, list[dict]] = {}
    wayfinder = Path(sys.executable).with_name("wayfinder")
    try:
        queryfile = scratch / "queries.txt"
        queryfile.write_text("".join(f"{name} A\n" for name in names(args.names)))
        conf = unbound_config(scratch, port + 1, workers, args.names)
        with bench_kafka(args.bootstrap, base_port=47492) as bootstrap:
            namespace = f"bench{os.getpid()}x{int(time.time())}"
            publish_names(bootstrap, namespace, args.names)
            flags = {"clients": clients, "outstanding": outstanding, "client_pin": client_pin}
            for _ in range(args.rounds):  # alternated, so drift in the box's load hits both alike
                node = None
                try:
                    node = subprocess.Popen(
                        [*server_pin, str(wayfinder), "--log-level", "warning", "node", "--bootstrap", bootstrap,
                         "--namespace", namespace, "--node-id", "bench", "--agent-ip", "10.255.0.1",
                         "--roles", "dns", "--dns-listen", f"127.0.0.1:{port}", "--dns-workers", str(workers)],
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)
                    wait_every_worker(port, node)
                    results.setdefault("ours", []).append(measure(
                        f"wayfinder node --dns-workers {workers}", node, port, queryfile, args.seconds,
                        args.latency_qps, cpu=tree_cpu_seconds, **flags))
                finally:
                    stop(node)
                unbound = None
                try:
                    unbound = subprocess.Popen([*server_pin, UNBOUND, "-d", "-c", str(conf)],
                                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL)
                    results.setdefault("unbound", []).append(measure(
                        f"unbound num-threads {workers}", unbound, port + 1, queryfile, args.seconds,
                        args.latency_qps, **flags))
                finally:
                    stop(unbound)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    best = {key: median_run(runs) for key, runs in results.items()}
    report = {"bench": "dns_throughput", "mode": "all cores vs unbound", "names": args.names,
              "seconds": args.seconds, "rounds": args.rounds, "workers": workers, "unbound_threads": workers,
              "dnsperf_clients": clients, "dnsperf_outstanding": outstanding,
              "cpus": os.cpu_count(), "pinned": bool(server_pin),
              "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
              "ours": best["ours"], "unbound": best["unbound"],
              "ratio": round(best["ours"]["qps"] / best["unbound"]["qps"], 3),
              "qps_per_round": {key: [run["qps"] for run in runs] for key, runs in results.items()}}
    print(json.dumps(report, indent=2))


def median_run(runs: list[dict]) -> dict:
    """The run with the median qps (the lower middle for an even count)."""
    return sorted(runs, key=lambda run: run["qps"])[(len(runs) - 1) // 2]


if __name__ == "__main__":
    main()
