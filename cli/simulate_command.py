"""`wayfinder simulate`: run the simulated Mesos master and Marathon until stopped."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
import orjson

from cli.checks import check_port_free
from cli.running import log_options, run_until_signal
from simulator.scenario import Step, parse_scenario, run_scenario
from simulator.server import Simulator, load_model


def _host_port(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command("simulate")
@log_options
@click.option("--mesos-listen", default="127.0.0.1:5050", show_default=True, callback=_host_port,
              help="Where the Mesos master API listens (port 0: any free port).")
@click.option("--marathon-listen", default="127.0.0.1:8080", show_default=True, callback=_host_port,
              help="Where the Marathon API and the /sim control API listen.")
@click.option("--mesos-state", type=FILE, help="Master or agent /state, SUBSCRIBE stream, or GET_STATE reply.")
@click.option("--marathon-apps", type=FILE, help="A /v2/apps reply or one app definition.")
@click.option("--scenario", type=FILE, help="JSON lines of control-API calls to run after start.")
@click.option("--leader", default=None, help="Act as a non-leading master: 307 every Mesos request here.")
@click.option("--heartbeat", type=float, default=15.0, show_default=True,
              help="Seconds between SUBSCRIBE heartbeats and SSE keep-alives.")
@click.option("--seed", type=int, default=None, help="Seed for ids and churn, for repeatable runs.")
def simulate_command(mesos_listen, marathon_listen, mesos_state, marathon_apps, scenario, leader,
                     heartbeat, seed) -> None:
    """Serve a stand-in Mesos master and Marathon built from real documents."""
    try:
        model = load_model(mesos_state, marathon_apps, seed=seed)
        steps = parse_scenario(str(scenario), scenario.read_text()) if scenario else []
    except ValueError as error:
        raise click.ClickException(str(error))
    if heartbeat <= 0:
        raise click.BadParameter("must be positive", param_hint="--heartbeat")
    for option, (host, port) in (("--mesos-listen", mesos_listen), ("--marathon-listen", marathon_listen)):
        if port:  # port 0 takes any free one
            check_port_free(f"the simulator's listen address ({option})", host, port)
    simulator = Simulator(model, mesos_listen, marathon_listen, leader_url=leader, heartbeat_interval=heartbeat)
    # The shared signal handling: a stop within 5 s, whatever the scenario is waiting on.
    run_until_signal(lambda stop: _serve(simulator, steps, stop))


async def _serve(simulator: Simulator, steps: list[Step], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    await simulator.start()
    click.echo(f"mesos: {simulator.mesos_url}")
    click.echo(f"marathon: {simulator.marathon_url}")
    report = lambda result: click.echo(orjson.dumps(result).decode())  # noqa: E731
    scenario = loop.create_task(run_scenario(simulator.marathon_url, steps, report)) if steps else None
    try:
        await stop.wait()
    finally:
        if scenario is not None:
            scenario.cancel()
            await asyncio.gather(scenario, return_exceptions=True)
        await simulator.stop()


if __name__ == "__main__":
    simulate_command()
