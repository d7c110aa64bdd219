"""Where the Kafka cluster is: --bootstrap, then WAYFINDER_BOOTSTRAP, then `wayfinder kafka up`'s."""

from __future__ import annotations

import os
from pathlib import Path

import click

ENV_BOOTSTRAP = "WAYFINDER_BOOTSTRAP"


def resolve_bootstrap(explicit: str | None, kafka_dir: Path | None = None) -> str:
    if explicit:
        return explicit
    if os.environ.get(ENV_BOOTSTRAP):
        return os.environ[ENV_BOOTSTRAP]
    from runtime.kafka.cluster import DEFAULT_DIR, bootstrap_of

    found = bootstrap_of(kafka_dir or DEFAULT_DIR)
    if not found:
        raise click.UsageError(
            f"no Kafka given: pass --bootstrap, set {ENV_BOOTSTRAP}, or start one with `wayfinder kafka up`"
        )
    return found


bootstrap_option = click.option(
    "--bootstrap",
    envvar=ENV_BOOTSTRAP,
    default=None,
    help=f"Kafka bootstrap servers (default: ${ENV_BOOTSTRAP}, else the cluster `wayfinder kafka up` started).",
)


namespace_option = click.option(
    "--namespace",
    envvar="WAYFINDER_NAMESPACE",
    default="wayfinder",
    show_default=True,
    help="Topic namespace: topics are named <namespace>.mesos.tasks and so on ($WAYFINDER_NAMESPACE).",
)
