"""L7 convergence benchmark: the real pipeline (simulator, producers, processor, a node's haproxy
role running a real HAProxy on loopback) with N Marathon apps of K tasks each. Prints JSON.

    .venv/bin/python bench/haproxy_convergence.py [--bootstrap HOST:PORT] [--apps 1000] [--per-app 3]
        [--launches 100] [--churn-minutes 10] [--churn-rate 5] [--structural-reloads 3] [--clients 2]

Without --bootstrap it starts its own broker. Simulator, producer and processor run as their own
processes (logs in a temporary directory, named on stderr and removed after a successful run);
the node's haproxy role runs here, and HAProxy under it. The tasks run on one simulated agent
whose hostname is 127.0.0.1: its host ports are free ports below the ephemeral range, and one
process (bench/haproxy_probes.py) listens on every one of them and answers with the port's
number, so a request through HAProxy tells which task served it. Every app has one service
port (its own per-port frontend) and a vhost on the shared HTTP frontend, in group `external`.

1. Launch: N times, one more task for an app (each launch a different app, scaled back after
   it), measured from the simulator's stamp on TASK_RUNNING (its wall clock when the model
   changed) to the first answer from the new task's port through HAProxy's HTTP frontend (a
   probe every ~1 ms from the moment the simulator replied). Also split at the node: stamp ->
   the pass that put the task into HAProxy (runtime API) -> the answer.
2. Churn: for M minutes, kills and launches of tasks of existing apps at a fixed rate (every app
   stays within one task of its size, so no backend outgrows its pre-allocated slots), then the
   reloads that caused: the role's count, HAProxy master's own (`show proc`), and the passes
   that went through the runtime API instead.
3. Structural reload: a new app with a new vhost and service port, while clients loop on
   requests to the other apps' vhosts (new connection each); the time from the app's creation
   stamp to its vhost being served, how long the reloading pass took (render, `haproxy -c`,
   reload, new worker confirmed), and the requests that failed from 1 s before to 2 s after.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
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

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from appliers.haproxy.process import group_members  # noqa: E402
from appliers.haproxy.settings import HaproxySettings, SharedPorts  # noqa: E402
from appliers.node import Node, NodeOptions  # noqa: E402
from bench.broker import bench_kafka  # noqa: E402
from bench.haproxy_probes import (  # noqa: E402
    AppliedTasks, Cluster, RequestLoop, ask, backend_port, free_ports, raise_fd_limit, time_passes, wait_until_served)
from bench.pipeline import CpuMeter, Processes, TopicSizes, rounded, say  # noqa: E402
from bench.producer_latency import free_port, percentile, wait_http  # noqa: E402
from runtime.kafka.topics import ensure_topics  # noqa: E402
from schemas.catalog import Catalog  # noqa: E402

GROUP = "external"
HOST_PORT_SPARE = 100  # host ports beyond the tasks that ever run at once
SERVED_TIMEOUT_S = 10.0  # a launch not served by then counts as missing
NEW_APP_TIMEOUT_S = 60.0
LOAD_TIMEOUT_S = 900.0
PROGRESS_EVERY_S = 2.0
LAUNCH_PAUSE_S = 0.3  # between launches: each one meets an idle pipeline
BASELINE_S = 1.0  # requests before a structural change
DRAIN_S = 2.0  # and after its vhost is served: the old worker finishes its connections
SETTLE_TIMEOUT_S = 60.0
CHURN_OVERRUN = 2.0  # a churn behind its schedule is stopped at this many times its duration (+10 s)
LAUNCH_GOAL_MS = 250.0


def processor_flags() -> list[str]:
    """`--haproxy` while the processor's HAProxy stage is opt-in (the CLI has the flag), nothing
    once the stage is on by default."""
    from cli.main import process
    from processors.app import Processor

    if any(parameter.name == "haproxy" for parameter in process.params):
        return ["--haproxy"]
    opt_in = inspect.signature(Processor).parameters.get("haproxy")
    if opt_in is not None and opt_in.default is False:
        raise SystemExit("the processor's HAProxy stage is opt-in, but `wayfinder process` has no --haproxy")
    return []


def summary(values: list[float]) -> dict:
    return {"count": len(values), "p50": rounded(percentile(values, 50)), "p99": rounded(percentile(values, 99)),
            "max": rounded(max(values) if values else None)}


async def load(args, loop, cluster: Cluster, http_port: int, processes: Processes, sizes: TopicSizes,
               topic: str, started: float) -> dict:
    """Wait until the node's HAProxy serves every app with all its tasks; when each stage was
    reached (s from the producer's start)."""
    stages: dict[str, float] = {}
    deadline, said = started + LOAD_TIMEOUT_S, 0.0
    while True:
        processes.check()
        elapsed = time.monotonic() - started
        services = list(loop.desired.values())
        servers = sum(len(service.servers) for service in services)
        records = await asyncio.to_thread(sizes.size, topic)
        applied = loop.ready.is_set() and not loop.dirty and servers >= args.apps * args.per_app
        for stage, done in (("haproxy_topic_has_n_records_s", records >= args.apps),
                            ("node_has_every_server_s", servers >= args.apps * args.per_app),
                            ("haproxy_runs_every_server_s", applied)):
            if done and stage not in stages:
                stages[stage] = round(elapsed, 2)
        if elapsed - said >= PROGRESS_EVERY_S or applied:
            said = elapsed
            say(f"{elapsed:6.1f}s  haproxy topic {records:6d}  node: {len(services):5d} services, {servers:6d} servers"
                f"{'  (ready)' if loop.ready.is_set() else ''}  reloads {loop.role.reloads}")
        if applied:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"HAProxy did not get every server in {LOAD_TIMEOUT_S:.0f}s (stages done: {stages}; "
                               f"logs in {processes.logs})")
        await asyncio.sleep(0.5)
    ports = await asyncio.to_thread(cluster.ports_by_app)
    unserved = await asyncio.to_thread(apps_not_served, http_port, cluster, ports, deadline - time.monotonic())
    if unserved:
        raise TimeoutError(f"{len(unserved)} apps are not served through HAProxy, e.g. {unserved[:5]}")
    stages["every_app_answers_through_haproxy_s"] = round(time.monotonic() - started, 2)
    return stages


def apps_not_served(http_port: int, cluster: Cluster, ports: dict[str, set[int]], timeout: float) -> list[str]:
    """Ask each app's vhost once; the apps whose answer did not come from one of their tasks,
    asked again until `timeout`."""
    waiting, deadline = sorted(cluster.tasks), time.monotonic() + max(timeout, 5.0)
    while waiting and time.monotonic() < deadline:
        left = []
        for app in waiting:
            try:
                served = backend_port(*ask(http_port, cluster.vhost(app)))
            except OSError:
                served = None
            if served not in ports.get(app, ()):
                left.append(app)
        waiting = left
        if waiting:
            time.sleep(0.5)
    return waiting


async def launches(args, cluster: Cluster, applied: AppliedTasks, http_port: int, processes: Processes) -> dict:
    """One more task for each of `args.launches` apps in turn: stamp -> served."""
    rng = random.Random(7)
    latencies, to_node, node_to_served, missing, wrong = [], [], [], 0, 0
    for app in rng.sample(sorted(cluster.tasks), min(args.launches, len(cluster.tasks))):
        processes.check()
        old = set((await asyncio.to_thread(cluster.ports_of, app)).values())
        task, at = await asyncio.to_thread(cluster.launch, app)
        served = await asyncio.to_thread(wait_until_served, http_port, cluster.vhost(app),
                                         lambda port: port not in old, SERVED_TIMEOUT_S)
        if served is None:
            missing += 1
        else:
            served_at, port = served
            wrong += (await asyncio.to_thread(cluster.ports_of, app)).get(task) != port
            latencies.append((served_at - at) * 1000)
            if task in applied.added_at:
                to_node.append((applied.added_at[task] - at) * 1000)
                node_to_served.append((served_at - applied.added_at[task]) * 1000)
        await asyncio.to_thread(cluster.kill, app, task)
        await asyncio.sleep(LAUNCH_PAUSE_S)
    result = summary(latencies)
    return {"goal": f"p99 <= {LAUNCH_GOAL_MS:.0f} ms", "met": bool(latencies) and not missing
            and result["p99"] <= LAUNCH_GOAL_MS, **result, "missing": missing,
            "served_by_another_new_port": wrong,
            "hops_ms": {"stamp_to_node_applied": summary(to_node), "node_applied_to_served": summary(node_to_served)}}


async def churn(args, cluster: Cluster, loop, applied: AppliedTasks, processes: Processes, cpu: CpuMeter) -> dict:
    """Kills and launches of tasks of existing apps for `args.churn_minutes`; the reloads they caused."""
    role, rng = loop.role, random.Random(11)
    full, short = sorted(cluster.tasks), []  # apps at their size, apps one task short
    kills, launched = [], []
    before = (role.reloads, role.runtime_passes, (await asyncio.to_thread(role.process.show_proc)).reloads)
    seconds = args.churn_minutes * 60
    total = int(args.churn_rate * seconds)
    cpu.start()
    started = time.monotonic()
    deadline, stopped = started + CHURN_OVERRUN * seconds + 10, False
    for n in range(total):
        await asyncio.sleep(max(0.0, started + n / args.churn_rate - time.monotonic()))
        if time.monotonic() > deadline:
            stopped = True
            break
        if n % 50 == 0:
            processes.check()
        if full and (not short or rng.random() < 0.5):
            app = full.pop(rng.randrange(len(full)))
            task = rng.choice(cluster.tasks[app])
            kills.append((task, await asyncio.to_thread(cluster.kill, app, task)))
            short.append(app)
        else:
            app = short.pop(rng.randrange(len(short)))
            launched.append(await asyncio.to_thread(cluster.launch, app))
            full.append(app)
    ran_s = time.monotonic() - started
    cpu_used = cpu.stop()
    settle_deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while time.monotonic() < settle_deadline and not (all(t in applied.removed_at for t, _ in kills)
                                                      and all(t in applied.added_at for t, _ in launched)):
        await asyncio.sleep(0.2)
    after = (role.reloads, role.runtime_passes, (await asyncio.to_thread(role.process.show_proc)).reloads)
    reloads = after[0] - before[0]
    return {
        "goal": "0 reloads", "met": reloads == 0 and after[2] == before[2],
        "minutes": args.churn_minutes, "asked_operations_per_second": args.churn_rate,
        "operations": len(kills) + len(launched), "kills": len(kills), "launches": len(launched),
        "achieved_operations_per_second": round((len(kills) + len(launched)) / ran_s, 2) if ran_s else None,
        "stopped_by_bench": stopped,
        "reloads": reloads, "haproxy_master_reloads": after[2] - before[2], "runtime_api_passes": after[1] - before[1],
        "stamp_to_node_applied_ms": {
            "launch": summary([(applied.added_at[t] - at) * 1000 for t, at in launched if t in applied.added_at]),
            "kill": summary([(applied.removed_at[t] - at) * 1000 for t, at in kills if t in applied.removed_at])},
        "not_applied": sum(t not in applied.added_at for t, _ in launched) + sum(t not in applied.removed_at for t, _ in kills),
        "cpu": cpu_used,
    }


async def structural_reloads(args, cluster: Cluster, loop, passes: list, http_port: int, service_ports: list[int],
                             processes: Processes) -> dict:
    """A new app with a new vhost, `args.structural_reloads` times, under a request loop."""
    role, hosts, rounds = loop.role, [cluster.vhost(app) for app in sorted(cluster.tasks)], []
    for n in range(args.structural_reloads):
        processes.check()
        app = f"/bench/new{n:03d}"
        requests = RequestLoop(http_port, hosts, args.clients)
        requests.start()
        try:
            await asyncio.sleep(BASELINE_S)
            reloads, first_pass = role.reloads, len(passes)
            at = await asyncio.to_thread(cluster.create_app, app, service_ports[n], args.per_app, GROUP)
            served = await asyncio.to_thread(wait_until_served, http_port, cluster.vhost(app), lambda port: True,
                                             NEW_APP_TIMEOUT_S)
            await asyncio.sleep(DRAIN_S)
        finally:
            counts = requests.stop()
        reloading = [(end - start) * 1000 for start, end, reloaded in passes[first_pass:] if reloaded]
        rounds.append({"stamp_to_served_ms": rounded((served[0] - at) * 1000) if served else None,
                       "reloads": role.reloads - reloads, "reload_pass_ms": [rounded(ms) for ms in reloading], **counts})
    failed = sum(r["failed"] for r in rounds)
    return {"goal": "0 failed requests", "met": failed == 0 and all(r["stamp_to_served_ms"] is not None for r in rounds),
            "clients": args.clients, "failed": failed, "requests": sum(r["requests"] for r in rounds),
            "stamp_to_served_ms": summary([r["stamp_to_served_ms"] for r in rounds if r["stamp_to_served_ms"] is not None]),
            "reload_pass_ms": summary([ms for r in rounds for ms in r["reload_pass_ms"]]), "rounds": rounds}


def start_backends(count: int, first_port: int, logs: Path) -> tuple[subprocess.Popen, list[list[int]]]:
    """The backends process (bench/haproxy_probes.py) and the port ranges it listens on."""
    with open(logs / "backends.log", "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "bench.haproxy_probes", "--first-port", str(first_port),
                                    "--count", str(count)], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=log)
    line = process.stdout.readline()  # bounded: the process binds, prints, or exits
    if not line:
        process.wait(10)
        raise RuntimeError(f"the backends process exited with {process.returncode}; see {logs / 'backends.log'}")
    return process, orjson.loads(line)["port_ranges"]


def stop_backends(process: subprocess.Popen) -> None:
    process.stdin.close()  # its signal to stop
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def still_running(pids: list[int]) -> list[int]:
    """Those of `pids` that still run (not zombies)."""
    found = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.append(pid)
    return found


async def measure(args, bootstrap: str) -> dict:
    catalog = Catalog(f"bench{secrets.token_hex(4)}")
    ensure_topics(bootstrap, catalog)
    workdir = Path(tempfile.mkdtemp(prefix="wayfinder-bench-haproxy-"))
    say(f"logs and HAProxy's directory: {workdir}")
    host_ports = args.apps * args.per_app + (args.structural_reloads + 1) * args.per_app + HOST_PORT_SPARE
    backends, ranges = start_backends(host_ports, args.host_port_base, workdir)
    taken = {port for first, last in ranges for port in range(first, last + 1)}
    http_port, https_port, appid_port, stats_port, *service_ports = free_ports(
        4 + args.apps + args.structural_reloads, args.service_port_base, taken)
    settings = HaproxySettings(groups=(GROUP,), ports=SharedPorts(http_port, https_port, appid_port, stats_port),
                               bind="127.0.0.1", directory=str(workdir / "haproxy"))
    mesos, marathon = free_port(), free_port()
    processes = Processes(workdir)
    processes.names[backends.pid] = "backends"
    cluster = Cluster(f"http://127.0.0.1:{marathon}")
    node_task, stop, sizes, haproxy_group = None, asyncio.Event(), TopicSizes(bootstrap), None
    try:
        processes.spawn("simulator", "simulate", "--mesos-listen", f"127.0.0.1:{mesos}", "--marathon-listen",
                        f"127.0.0.1:{marathon}")
        await asyncio.to_thread(wait_http, f"{cluster.url}/ping", 120)
        await asyncio.to_thread(cluster.control, "POST", "/sim/agents", {"hostname": "127.0.0.1", "port_ranges": ranges})
        say(f"creating {args.apps} apps of {args.per_app} tasks in the simulator")
        for n in range(args.apps):
            await asyncio.to_thread(cluster.create_app, f"/bench/app{n:04d}", service_ports[args.structural_reloads + n],
                                    args.per_app, GROUP)
        started = time.monotonic()
        processes.spawn("producer", "produce", "--bootstrap", bootstrap, "--namespace", catalog.namespace,
                        "--mesos", f"http://127.0.0.1:{mesos}", "--marathon", cluster.url)
        processes.spawn("processor", "process", "--bootstrap", bootstrap, "--namespace", catalog.namespace,
                        *processor_flags())
        node = Node(NodeOptions(bootstrap, catalog, "bench", "127.0.0.1", roles=("haproxy",), haproxy=settings))
        loop = node.loops["haproxy"]
        passes = time_passes(loop.role)
        applied = AppliedTasks()
        node_task = asyncio.create_task(node.run(stop))
        stages = await load(args, loop, cluster, http_port, processes, sizes, catalog.topic("haproxy").name, started)
        haproxy_group = loop.role.process.pid
        applied.start_from(loop.desired)
        loop.on_applied = applied.record
        say(f"measuring {args.launches} launches")
        launch = await launches(args, cluster, applied, http_port, processes)
        say(f"churning for {args.churn_minutes} min at {args.churn_rate} operations/s")
        for worker in (await asyncio.to_thread(loop.role.process.show_proc)).current_workers:
            processes.names[worker.pid] = "haproxy worker"
        churned = await churn(args, cluster, loop, applied, processes, CpuMeter(processes, bootstrap))
        say(f"{args.structural_reloads} structural reloads under {args.clients} looping clients")
        structural = await structural_reloads(args, cluster, loop, passes, http_port, service_ports, processes)
        reloads_in_all = loop.role.reloads
    finally:
        stop.set()
        if node_task is not None:
            haproxy_group = haproxy_group or loop.role.process.pid
            try:
                await asyncio.wait_for(node_task, 60)  # the role stops HAProxy
            except Exception as error:  # noqa: BLE001 - the run's own failure is the one to report
                say(f"the node stopped with {type(error).__name__}: {error}")
        sizes.close()
        processes.stop()
        stop_backends(backends)
    # Everything this run started: the pipeline's processes, the backends, HAProxy's whole group.
    left = still_running([process.pid for process in processes.running] + [backends.pid])
    left += group_members(haproxy_group) if haproxy_group else []
    if not left:
        shutil.rmtree(workdir)  # kept when the run failed or left something behind, for its logs
    return {
        "benchmark": "haproxy convergence",
        "apps": args.apps, "tasks": args.apps * args.per_app, "tasks_per_app": args.per_app,
        "measured_from": "simulator change stamp (wall clock) to an HTTP answer through HAProxy from the task's port",
        "load_stages_s": stages,
        "launch_to_served_ms": launch,
        "churn": churned,
        "structural_reload": structural,
        "reloads_in_the_whole_run": reloads_in_all,
        "processes_left_behind": left,
        "notes": [
            "no reference: marathon-lb needs a real Marathon and cannot run here, so no ratio",
            "a launch is seen at most one round of the app's servers late (round-robin, a probe about every 1 ms)",
            "the node, its HAProxy and the probing clients share this machine (and the node's process with the clients)",
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default=os.environ.get("WAYFINDER_BOOTSTRAP"))
    parser.add_argument("--kafka-base-port", type=int, default=47492,
                        help="without --bootstrap: the broker this script starts uses PORT and PORT+1")
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--per-app", type=int, default=3, help="tasks per app")
    parser.add_argument("--launches", type=int, default=100, help="launches measured (each in another app)")
    parser.add_argument("--churn-minutes", type=float, default=10.0)
    parser.add_argument("--churn-rate", type=float, default=5.0, help="kills and launches a second during the churn")
    parser.add_argument("--structural-reloads", type=int, default=3)
    parser.add_argument("--clients", type=int, default=2, help="threads looping on requests during a structural reload")
    parser.add_argument("--host-port-base", type=int, default=20000, help="tasks' host ports: free ports from here up")
    parser.add_argument("--service-port-base", type=int, default=10000,
                        help="HAProxy's frontends (shared and per service port): free ports from here up")
    args = parser.parse_args()
    if args.apps < 1 or args.per_app < 1 or args.churn_rate <= 0 or args.churn_minutes < 0:
        parser.error("--apps and --per-app must be at least 1, --churn-rate above 0, --churn-minutes not negative")
    raise_fd_limit(1024 + 4 * args.clients)
    with bench_kafka(args.bootstrap, base_port=args.kafka_base_port) as bootstrap:
        print(json.dumps(asyncio.run(measure(args, bootstrap)), indent=2))


if __name__ == "__main__":
    main()
