"""`wayfinder demo`: Kafka, the simulator on a real Mesos document, both producers, the
processor, the live history, (as root) a node whose VIP a client reaches by name and two
containers on two agents talking over the overlay by name, and a node whose HAProxy serves an
app by vhost.

It starts a local Kafka unless one is given, plays a short scenario against the simulated
cluster (launch, scale, a new agent, a kill), and prints every change as it lands in the
``events`` topic, one compact line each (cli/demo/lines.py). When the scenario is done the
clients go on probing; Ctrl-C (or --duration) stops everything it started, Kafka included, and
a summary of the nodes' convergence closes the output.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
import time
from pathlib import Path

import aiohttp
import orjson

from appliers.node import Node
from processors.app import Processor
from producers.run import ProducerOptions, Producers
from cli import tail as tailing
from cli.demo import edge, network, overlay
from cli.demo.lines import DONE, history_line, say, summary
from cli.running import STOP_GRACE_S, at_forced_exit
from runtime.kafka import cluster
from runtime.kafka.node import send_signal, wait_gone
from runtime.kafka.topics import ensure_topics
from schemas.catalog import Catalog
from simulator.scenario import parse_scenario, run_scenario
from simulator.server import Simulator, load_model

HERE = Path(__file__).parent
FIXTURE = HERE / "operator-api.json"  # dcos-net's recorded SUBSCRIBE stream: host, bridge, overlay, IPv6 tasks
SCENARIO = HERE / "scenario.jsonl"
KAFKA_STOP_MIN_S = 0.5  # the least the demo's own broker gets for its controlled shutdown


class HistoryPrinter:
    """Follows the events topic from its start and prints one line per change, until ``stop``;
    counts what it printed for the summary."""

    def __init__(self, bootstrap: str, catalog: Catalog) -> None:
        self.bootstrap, self.catalog = bootstrap, catalog
        self.seen = 0

    def run(self, stop: threading.Event) -> None:
        for record, value in tailing.tail(self.bootstrap, self.catalog.topic("events"), True, [], None, None, stop):
            sys.stdout.write(history_line(record, value) + "\n")
            sys.stdout.flush()
            self.seen += 1


async def _scenario_then_say_done(steps, simulator: Simulator, probing: list[str]) -> None:
    await run_scenario(simulator.marathon_url, steps, lambda result: None)
    probing = [part for part in ("VIP", "vhost", "overlay") if part in probing]  # as the README names them
    say(DONE.format(parts=", ".join(probing)) if probing else "scenario done; Ctrl-C to stop")


def _convergence(nodes: list[Node]) -> dict[str, list[float]]:
    """Per role, every node's convergence samples (two nodes may run the same role)."""
    samples: dict[str, list[float]] = {}
    for node in nodes:
        for role, loop in node.loops.items():
            samples.setdefault(role, []).extend(loop.convergence_s)
    return samples


def _kill_own_kafka(kafka_dir: Path) -> None:
    """SIGKILL the demo's own brokers, for a forced exit (cli/running.py). No controlled
    shutdown: their data is the demo's throwaway history, and the next start recovers the log.
    They run in their own session: nobody else would stop them."""
    pids = [broker["pid"] for broker in cluster.status(kafka_dir) if broker["pid"] is not None]
    for pid in pids:
        send_signal(pid, signal.SIGKILL)
    for pid in pids:
        wait_gone(pid, 1.0)


async def run_demo(stop: asyncio.Event, bootstrap: str | None, kafka_dir: Path, namespace: str,
                   duration: float | None, base_port: int = cluster.DEFAULT_BASE_PORT) -> None:
    started_kafka = False  # a Kafka given with --bootstrap is someone else's: never stopped here
    stopping_since: float | None = None
    if not bootstrap:
        say(f"starting Apache Kafka in {kafka_dir} on base port {base_port} …", err=True)
        # Before the start: a forced exit during it (it takes seconds) kills what it started.
        at_forced_exit(lambda: _kill_own_kafka(kafka_dir))
        bootstrap = await asyncio.to_thread(cluster.up, kafka_dir, base_port=base_port)
        started_kafka = True
    catalog = Catalog(namespace)
    simulator = Simulator(load_model(FIXTURE))
    printer_stop = threading.Event()
    printer = HistoryPrinter(bootstrap, catalog)
    nodes: list[Node] = []
    try:
        await simulator.start()
        await asyncio.to_thread(ensure_topics, bootstrap, catalog)
        say(f"kafka {bootstrap} | mesos {simulator.mesos_url} | marathon {simulator.marathon_url}", err=True)
        say(f"history of every change (in full: wayfinder tail events --namespace {namespace}):", err=True)
        threading.Thread(target=printer.run, args=(printer_stop,), daemon=True).start()
        producers = Producers(ProducerOptions(bootstrap=bootstrap, catalog=catalog,
                                              mesos_url=simulator.mesos_url, marathon_url=simulator.marathon_url))
        async with aiohttp.ClientSession() as http:
            async def control(method: str, path: str, body=None) -> dict:
                async with http.request(method, simulator.marathon_url + path, data=orjson.dumps(body)) as reply:
                    return await reply.json()

            steps = parse_scenario(str(SCENARIO), SCENARIO.read_text())
            probing: list[str] = []  # what the clients probe once the scenario is done
            tasks = [
                asyncio.create_task(producers.run(stop)),
                asyncio.create_task(Processor(bootstrap, catalog).run(stop)),
                asyncio.create_task(_scenario_then_say_done(steps, simulator, probing)),
            ]
            # Each part of the demo: its module, what its client probes, and the nodes it runs.
            parts = ((network, "VIP", lambda part: [part.node], network.NetworkDemo),
                     (overlay, "overlay", lambda part: list(part.nodes.values()), overlay.OverlayDemo),
                     (edge, "vhost", lambda part: [part.node], edge.EdgeDemo))
            for module, probe, nodes_of, make in parts:
                if stop.is_set():  # stopped while Kafka started: what is not started needs no stop
                    break
                reason = module.why_not()
                if reason:
                    say(f"(the {probe} part of the demo is skipped: {reason})", err=True)
                    continue
                part = make(bootstrap, catalog)
                nodes.extend(nodes_of(part))
                probing.append(probe)
                tasks.append(asyncio.create_task(part.run(stop, control)))
            if duration is not None:
                asyncio.get_running_loop().call_later(duration, stop.set)
            await stop.wait()
            stopping_since = time.monotonic()
            tasks[2].cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            for result in results:
                if isinstance(result, Exception):
                    say(f"demo part failed: {result!r}", err=True)
    finally:
        printer_stop.set()
        # Before Kafka stops, which takes seconds: a second Ctrl-C there still leaves the summary.
        for line in summary(printer.seen, _convergence(nodes)):
            say(line)
        await simulator.stop()
        if started_kafka:
            # A controlled shutdown takes 1-3 s; SIGKILL (see _kill_own_kafka) after what is
            # left of the grace a signal gives, so that a stop still ends clean (exit 0).
            left = (cluster.STOP_TIMEOUT_S if stopping_since is None
                    else STOP_GRACE_S - 0.5 - (time.monotonic() - stopping_since))
            await asyncio.to_thread(cluster.down, kafka_dir, max(left, KAFKA_STOP_MIN_S))
        say("demo stopped", err=True)
