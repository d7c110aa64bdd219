"""`wayfinder kafka ...`: install, start, stop and inspect the local Apache Kafka cluster.

Progress goes to stderr and results to stdout, so `BOOTSTRAP=$(wayfinder kafka up | tail -1)`
works in scripts.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from runtime.kafka import cluster
from runtime.kafka.install import KAFKA_VERSION, KafkaInstallError, install

DIR_OPTION = click.option(
    "--dir", "dir_", type=click.Path(file_okay=False, path_type=Path), default=cluster.DEFAULT_DIR,
    show_default=True, help="Cluster directory: config, data, logs, pid files.")


@click.group("kafka")
def kafka_group() -> None:
    """A local Apache Kafka (KRaft) cluster on 127.0.0.1, from Maven Central jars."""


@kafka_group.command("install")
def install_cmd() -> None:
    """Resolve Kafka's jars with Maven (once); print the cached classpath file."""
    try:
        click.echo(install())
    except KafkaInstallError as exc:
        raise click.ClickException(str(exc)) from exc


@kafka_group.command("up")
@click.option("--brokers", type=click.IntRange(min=1), default=None,
              help="Number of brokers (1 or 3). [default: 1, or what DIR already holds]")
@click.option("--base-port", type=click.IntRange(1024, 65000), default=None,
              help="Broker N listens on BASE+2(N-1), its controller on the next port; another "
                   "port moves a stopped DIR there, data kept. [default: 29092, or what DIR holds]")
@click.option("--heap", default="384m", show_default=True, help="JVM heap per broker.")
@DIR_OPTION
def up_cmd(brokers: int | None, base_port: int | None, heap: str, dir_: Path) -> None:
    """Start the cluster (or its stopped brokers); print the bootstrap servers last."""
    # An existing directory keeps its shape, so a bare `up` restarts what `up --brokers 3` made.
    held = {b["node_id"] for b in cluster.status(dir_)}
    if brokers is None:
        brokers = len(held) or 1
    if base_port is None:
        base_port = int(_first_port(dir_) or 29092)
    started = time.monotonic()
    try:
        click.echo(f"kafka {KAFKA_VERSION}: classpath {install()}", err=True)
        click.echo(f"starting the stopped brokers of {brokers} in {dir_} ...", err=True)
        bootstrap = cluster.up(dir_, brokers=brokers, base_port=base_port, heap=heap)
    except (KafkaInstallError, cluster.KafkaClusterError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"ready in {time.monotonic() - started:.1f} s; logs: {dir_}/broker-N/broker.log",
               err=True)
    click.echo(bootstrap)


@kafka_group.command("down")
@DIR_OPTION
def down_cmd(dir_: Path) -> None:
    """Stop the brokers; data stays in DIR."""
    cluster.down(dir_)
    click.echo(f"stopped the cluster in {dir_} (data kept)", err=True)


@kafka_group.command("status")
@DIR_OPTION
def status_cmd(dir_: Path) -> None:
    """One line per broker, then the bootstrap servers. Exit 3 unless every broker runs."""
    brokers = cluster.status(dir_)
    for b in brokers:
        state = f"running (pid {b['pid']})" if b["pid"] else "stopped"
        click.echo(f"broker {b['node_id']}  {b['listener']}  {state}  {b['log']}")
    bootstrap = cluster.bootstrap_of(dir_)
    click.echo(bootstrap or f"no cluster running in {dir_}")
    if not brokers or not all(b["pid"] for b in brokers):
        raise SystemExit(3)


def _first_port(dir_: Path) -> str | None:
    brokers = cluster.status(dir_)
    return brokers[0]["listener"].rsplit(":", 1)[1] if brokers else None


if __name__ == "__main__":
    kafka_group()
