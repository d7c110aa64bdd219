"""`wayfinder demo`: Kafka, the simulator on a real Mesos document, both producers, the
processor, the live history, (as root) a node whose VIP a client reaches by name and two
containers on two agents talking over the overlay by name, and a node whose HAProxy serves an
app by vhost.

It starts a local Kafka unless one is given, plays a short scenario against the simulated
cluster (launch, scale, a new agent, a kill), and prints every change as it lands in the
``events`` topic. Ctrl-C (or --duration) stops everything it started, Kafka included.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path

import aiohttp
import click
import orjson

from processors.app import Processor
from producers.run import ProducerOptions, Producers
from cli import tail as tailing
from cli.demo import edge, network, overlay
from runtime.kafka import cluster
from runtime.kafka.topics import ensure_topics
from schemas.catalog import Catalog
from simulator.scenario import parse_scenario, run_scenario
from simulator.server import Simulator, load_model

HERE = Path(__file__).parent
FIXTURE = HERE / "operator-api.json"  # dcos-net's recorded SUBSCRIBE stream: host, bridge, overlay, IPv6 tasks
SCENARIO = HERE / "scenario.jsonl"


def _print_history(bootstrap: str, catalog: Catalog, stop: threading.Event) -> None:
    """Follow the events topic from its start and print one line per change, until ``stop``."""
    for record, value in tailing.tail(bootstrap, catalog.topic("events"), True, [], None, None, stop):
        sys.stdout.write(tailing.as_line("events", record, value) + "\n")
        sys.stdout.flush()


async def run_demo(stop: asyncio.Event, bootstrap: str | None, kafka_dir: Path, namespace: str, duration: float | None) -> None:
    started_kafka = False
    if not bootstrap:
        click.echo(f"starting Apache Kafka in {kafka_dir} …", err=True)
        bootstrap = await asyncio.to_thread(cluster.up, kafka_dir)
        started_kafka = True
    catalog = Catalog(namespace)
    simulator = Simulator(load_model(FIXTURE))
    printer_stop = threading.Event()
    try:
        await simulator.start()
        await asyncio.to_thread(ensure_topics, bootstrap, catalog)
        click.echo(f"kafka {bootstrap} | mesos {simulator.mesos_url} | marathon {simulator.marathon_url}", err=True)
        click.echo(f"history of every change (also: wayfinder tail events --namespace {namespace}):", err=True)
        printer = threading.Thread(target=_print_history, args=(bootstrap, catalog, printer_stop), daemon=True)
        printer.start()
        producers = Producers(ProducerOptions(bootstrap=bootstrap, catalog=catalog,
                                              mesos_url=simulator.mesos_url, marathon_url=simulator.marathon_url))
        async with aiohttp.ClientSession() as http:
            async def control(method: str, path: str, body=None) -> dict:
                async with http.request(method, simulator.marathon_url + path, data=orjson.dumps(body)) as reply:
                    return await reply.json()

            steps = parse_scenario(str(SCENARIO), SCENARIO.read_text())
            tasks = [
                asyncio.create_task(producers.run(stop)),
                asyncio.create_task(Processor(bootstrap, catalog).run(stop)),
                asyncio.create_task(run_scenario(simulator.marathon_url, steps, lambda result: None)),
            ]
            reason = network.why_not()
            if reason:
                click.echo(f"(the VIP part of the demo is skipped: {reason})", err=True)
            else:
                tasks.append(asyncio.create_task(network.NetworkDemo(bootstrap, catalog).run(stop, control)))
            reason = overlay.why_not()
            if reason:
                click.echo(f"(the overlay part of the demo is skipped: {reason})", err=True)
            else:
                tasks.append(asyncio.create_task(overlay.OverlayDemo(bootstrap, catalog).run(stop, control)))
            reason = edge.why_not()
            if reason:
                click.echo(f"(the HAProxy part of the demo is skipped: {reason})", err=True)
            else:
                tasks.append(asyncio.create_task(edge.EdgeDemo(bootstrap, catalog).run(stop, control)))
            if duration is not None:
                asyncio.get_running_loop().call_later(duration, stop.set)
            await stop.wait()
            tasks[2].cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            for result in results:
                if isinstance(result, Exception):
                    click.echo(f"demo part failed: {result!r}", err=True)
    finally:
        printer_stop.set()
        await simulator.stop()
        if started_kafka:
            await asyncio.to_thread(cluster.down, kafka_dir)
        click.echo("demo stopped", err=True)
