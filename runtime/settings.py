"""Where the Kafka cluster is, and how to talk to it.

The bootstrap servers: --bootstrap, then the --kafka-config file's bootstrap.servers, then
WAYFINDER_BOOTSTRAP, then `wayfinder kafka up`'s. The file's other settings (TLS, SASL …) go to
every Kafka client (runtime/kafka/client_config.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import click

ENV_BOOTSTRAP = "WAYFINDER_BOOTSTRAP"
ENV_KAFKA_CONFIG = "WAYFINDER_KAFKA_CONFIG"


def given_bootstrap(explicit: str | None) -> str | None:
    """The Kafka the operator named (flag, file or environment), or None."""
    from runtime.kafka.client_config import file_bootstrap

    return explicit or file_bootstrap() or os.environ.get(ENV_BOOTSTRAP) or None


def resolve_bootstrap(explicit: str | None, kafka_dir: Path | None = None) -> str:
    given = given_bootstrap(explicit)
    if given:
        return given
    from runtime.kafka.cluster import DEFAULT_DIR, bootstrap_of

    found = bootstrap_of(kafka_dir or DEFAULT_DIR)
    if not found:
        raise click.UsageError(
            f"no Kafka given: pass --bootstrap, set bootstrap.servers in --kafka-config, set {ENV_BOOTSTRAP}, "
            "or start one with `wayfinder kafka up`"
        )
    return found


def _use_kafka_config(ctx: click.Context, param: click.Parameter, path: str | None) -> None:
    """Load, check and install the file before the command runs, so that a bad setting is one
    line here rather than an error deep inside a stage. No file installs none: a process (or
    a test) running several commands must not keep an earlier command's settings."""
    from runtime.kafka import client_config

    if path is None:
        client_config.install({})
        return
    try:
        settings = client_config.load(path)
        client_config.check_with_librdkafka(settings, path)
    except client_config.KafkaConfigError as error:
        raise click.BadParameter(str(error), ctx=ctx, param=param) from None
    client_config.install(settings, source=path)


def bootstrap_option(command):
    """--bootstrap and --kafka-config: every command that talks to Kafka takes both, from here.

    --bootstrap has no click envvar on purpose: resolve_bootstrap reads $WAYFINDER_BOOTSTRAP
    itself, after the file's bootstrap.servers, so that an explicit file beats the ambient
    environment."""
    command = click.option(
        "--kafka-config",
        envvar=ENV_KAFKA_CONFIG,
        default=None,
        metavar="FILE",
        expose_value=False,
        callback=_use_kafka_config,
        help="librdkafka properties (key=value lines, as kcat -F) for every Kafka client: TLS, SASL, "
             f"client.id, ...; its bootstrap.servers is the default bootstrap (${ENV_KAFKA_CONFIG}).",
    )(command)
    return click.option(
        "--bootstrap",
        default=None,
        help="Kafka bootstrap servers (default: --kafka-config's bootstrap.servers, else "
             f"${ENV_BOOTSTRAP}, else the cluster `wayfinder kafka up` started).",
    )(command)


namespace_option = click.option(
    "--namespace",
    envvar="WAYFINDER_NAMESPACE",
    default="wayfinder",
    show_default=True,
    help="Topic namespace: topics are named <namespace>.mesos.tasks and so on ($WAYFINDER_NAMESPACE).",
)
