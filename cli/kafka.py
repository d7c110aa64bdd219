"""`wayfinder kafka ...`: install, start, stop and inspect the local Apache Kafka cluster.

Progress goes to stderr and results to stdout, so `BOOTSTRAP=$(wayfinder kafka up | tail -1)`
works in scripts.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from runtime.kafka import cluster
from runtime.kafka.certs import CertificateError
from runtime.kafka.install import KAFKA_VERSION, KafkaInstallError, install
from runtime.kafka import acls
from runtime.kafka.client_config import passed_through
from runtime.kafka.secure import (MECHANISM, REAUTH_AFTER_S, ROLES, SecretsError, export_for_brokers, read_role,
                                  rotate_role, secrets_dir)
from runtime.kafka.secure import prepare as prepare_secrets
from runtime.kafka.secure import role_file as secure_role_file
from runtime.kafka.security_admin import SecurityAdminError, apply_acls, set_password
from runtime.settings import bootstrap_option, namespace_option, resolve_bootstrap
from schemas.catalog import Catalog

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
@click.option("--secure", is_flag=True, default=None,
              help="TLS, SASL/SCRAM users per role and ACLs only: a private CA, and one client "
                   "config per role in DIR/secrets/ROLE.properties (for --kafka-config). Chosen "
                   "when DIR is made; later starts keep it.")
@click.option("--reauth-after", "reauth_after", type=click.FloatRange(min=1), default=None, metavar="SECONDS",
              help="With --secure: a client's SASL session lasts this long, then it must re-authenticate "
                   "with its current password, so after a rotation no connection keeps the old one "
                   f"longer. [default: {REAUTH_AFTER_S}, or what DIR holds]")
@DIR_OPTION
def up_cmd(brokers: int | None, base_port: int | None, heap: str, secure: bool | None,
           reauth_after: float | None, dir_: Path) -> None:
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
        bootstrap = cluster.up(dir_, brokers=brokers, base_port=base_port, heap=heap,
                               secured=secure, reauth_after_s=reauth_after)
    except (KafkaInstallError, cluster.KafkaClusterError, CertificateError, SecretsError) as exc:
        raise click.ClickException(str(exc)) from exc
    if cluster.secured(dir_):
        click.echo(f"secured: TLS + {MECHANISM}; client configs (0600) in "
                   f"{secrets_dir(dir_)}/{{{','.join(ROLES)}}}.properties; apply the ACLs with "
                   f"`wayfinder kafka acls --apply --dir {dir_}`", err=True)
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


@kafka_group.command("acls")
@click.option("--apply", "apply_", is_flag=True,
              help="Make the cluster's ACLs of these roles exactly the table (idempotent); "
                   "without it, only print the table.")
@namespace_option
@bootstrap_option
@DIR_OPTION
def acls_cmd(apply_: bool, namespace: str, bootstrap: str | None, dir_: Path) -> None:
    """The ACLs each role needs, derived from the topic catalog's writers and readers.

    Applying needs a super user: --kafka-config with the admin role's file, or nothing for the
    secured cluster of --dir (its secrets/admin.properties)."""
    catalog = Catalog(namespace)
    grants = acls.derive(catalog)
    rows = [("ROLE", "RESOURCE", "NAME", "OPERATIONS"), *acls.table(grants)]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[3])
    click.echo("admin and the brokers are super users: no ACL", err=True)
    if not apply_:
        return
    server, settings = _admin_connection(bootstrap, dir_)
    try:
        changes = apply_acls(server, settings, catalog, grants)
    except SecurityAdminError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"applied to {server}: {changes.added} added, {changes.removed} removed, "
               f"{changes.kept} unchanged", err=True)


@kafka_group.command("rotate")
@click.argument("role", type=click.Choice(ROLES))
@click.option("--role-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The role's client config to rewrite, for a Kafka that `kafka up` does not run; "
                   "then --kafka-config names the admin's (a super user's) file.")
@bootstrap_option
@DIR_OPTION
def rotate_cmd(role: str, role_file: Path | None, bootstrap: str | None, dir_: Path) -> None:
    """Give ROLE a new SCRAM password, with no broker or other role restarted.

    The brokers refuse the old password on every new connection from then on, and the role's
    file (DIR/secrets/ROLE.properties, or --role-file) holds the new one. Running Wayfinder
    processes that were given that file as --kafka-config read it again and use the new
    password for their next connections; connections already open stay open."""
    if role_file is None:
        if not cluster.secured(dir_):
            raise click.ClickException(f"{dir_} holds no secured cluster (`wayfinder kafka up --secure`); "
                                       "for another Kafka give --role-file and --kafka-config")
        if cluster.bootstrap_of(dir_) is None:
            raise click.ClickException(f"the cluster in {dir_} is not running: `wayfinder kafka up --dir {dir_}`")
        role_file = secure_role_file(dir_, role)
    server, settings = _admin_connection(bootstrap, dir_)
    try:
        user = read_role(role_file).get("sasl.username")
        if user != role:
            raise SecretsError(f"{role_file} is the file of user {user!r}, not of {role!r}")
        rotate_role(role_file, lambda user, password: set_password(server, settings, user, password))
    except (SecurityAdminError, SecretsError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"rotated {role}'s password; the new one is in {role_file}", err=True)


@kafka_group.command("secrets")
@click.option("--hosts", required=True, metavar="H1,H2,...",
              help="The brokers' host names or addresses: the names their certificate is for.")
@click.option("--bootstrap", "servers", required=True, metavar="HOST:PORT,...",
              help="The brokers' SASL_SSL listeners, written into every role's client config.")
@click.option("--mounted-at", type=click.Path(path_type=Path), default=None,
              help="Where brokers and clients see DIR/secrets (a container's mount point), if not "
                   "there; the files name their paths under it.")
@click.option("--reauth-after", "reauth_after", type=click.FloatRange(min=1), default=REAUTH_AFTER_S,
              show_default=True, metavar="SECONDS",
              help="How long a client's SASL session lasts before it must re-authenticate (as for `up --secure`).")
@DIR_OPTION
def secrets_cmd(hosts: str, servers: str, mounted_at: Path | None, reauth_after: float, dir_: Path) -> None:
    """Secrets for brokers that `kafka up` does not run (compose/, your own): the same CA,
    keystore and role configs as `up --secure`, plus DIR/secrets/broker-security.properties
    (every broker's security settings) and DIR/secrets/scram-users.args (the StorageTool
    --add-scram arguments to format each broker's storage with). Existing secrets are kept."""
    try:
        broker = prepare_secrets(dir_, servers, [h.strip() for h in hosts.split(",") if h.strip()], mounted_at)
        settings, args = export_for_brokers(dir_, broker, reauth_after)
    except (CertificateError, SecretsError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"secrets in {secrets_dir(dir_)}: brokers append {settings.name} to their "
               f"server.properties and format with the arguments in {args.name}; clients use "
               "ROLE.properties", err=True)


def _admin_connection(bootstrap: str | None, dir_: Path) -> tuple[str, dict[str, str]]:
    """Where to apply, and as whom: the --kafka-config file's settings when one was given,
    else the admin role of the secured cluster in --dir."""
    server = resolve_bootstrap(bootstrap, dir_)
    settings = passed_through()
    if not settings.get("sasl.username") and cluster.secured(dir_):
        settings = cluster.admin_settings(dir_)
    return server, settings


def _first_port(dir_: Path) -> str | None:
    brokers = cluster.status(dir_)
    return brokers[0]["listener"].rsplit(":", 1)[1] if brokers else None


if __name__ == "__main__":
    kafka_group()
