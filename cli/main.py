"""The `wayfinder` command line."""

from __future__ import annotations

import dataclasses
import importlib
import sys
from pathlib import Path
from typing import NamedTuple

import click

from cli.config_file import config_option
from cli.running import log_options, one_shot_kafka, run_until_signal
from runtime.logs import LEVELS, configure_logging
from runtime.metrics_option import metrics_option
from runtime.settings import bootstrap_option, namespace_option, resolve_bootstrap
from schemas.catalog import Catalog


class LazyCommand(NamedTuple):
    """A subcommand that lives in its own module, imported only when it runs."""

    module: str
    attribute: str
    short_help: str  # its docstring's first paragraph: what `wayfinder --help` lists


# Importing every subcommand's module up front (the simulator's aiohttp, pyroute2, the Kafka
# cluster tooling, ...) cost about a second of every command's start-up, `wayfinder vips`
# included. `wayfinder --help` lists them from here without importing them;
# tests/unit/test_cli_lazy_commands.py checks that each entry matches its command.
LAZY_COMMANDS = {
    "kafka": LazyCommand("cli.kafka", "kafka_group",
                         "A local Apache Kafka (KRaft) cluster on 127.0.0.1, from Maven Central jars."),
    "node": LazyCommand("cli.node_command", "node",
                        "Run this node's roles: apply the derived topics to the kernel, serve DNS, run HAProxy."),
    "overlay": LazyCommand("cli.overlay", "overlay_group",
                           "This node's overlay leases and peers, next to what its kernel holds."),
    "simulate": LazyCommand("cli.simulate_command", "simulate_command",
                            "Serve a stand-in Mesos master and Marathon built from real documents."),
    "vips": LazyCommand("cli.vips_command", "vips_command",
                        "What the node's kernel has programmed, next to what the node (or the vips topic) asks for."),
}


class LazyGroup(click.Group):
    """A click group that imports a `LAZY_COMMANDS` module only when its command is resolved
    (run, or asked for its own --help), and lists them all without importing any."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in LAZY_COMMANDS:
            lazy = LAZY_COMMANDS[name]
            self.add_command(getattr(importlib.import_module(lazy.module), lazy.attribute), name)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's own listing, except that a command not imported yet is described by a
        stand-in carrying its short help, so the lines (and their shortening) are the same."""
        commands = [(name, self.commands.get(name) or click.Command(name, help=LAZY_COMMANDS[name].short_help))
                    for name in self.list_commands(ctx)]
        commands = [(name, command) for name, command in commands if not command.hidden]
        if commands:
            limit = formatter.width - 6 - max(len(name) for name, _ in commands)
            with formatter.section("Commands"):
                formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in commands])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--log-level", default="info", type=click.Choice(LEVELS), show_default=True,
              help="Least severe level logged (a command's own --log-level overrides it).")
@click.version_option(package_name="wayfinder", message="wayfinder %(version)s")
@click.pass_context
def main(ctx: click.Context, log_level: str) -> None:
    """Wayfinder: container networking for Mesos and Marathon, built on Kafka."""
    ctx.meta.setdefault("wayfinder.logs", {"level": "info", "format": "text"})["level"] = log_level
    configure_logging(log_level)


@main.command()
@config_option
@log_options
@bootstrap_option
@namespace_option
@click.option("--mesos", "mesos_url", help="Mesos master URL, e.g. http://127.0.0.1:5050")
@click.option("--marathon", "marathon_url", help="Marathon URL, e.g. http://127.0.0.1:8080")
@click.option("--masters", default="", callback=lambda ctx, param, value: _masters(value),
              help="Every master as HOST:PORT or [IPv6]:PORT, comma-separated (the state names only the leader).")
@click.option("--mesos-poll", is_flag=True, help="Poll /master/state instead of subscribing to the event stream.")
@click.option("--poll-interval", default=2.0, show_default=True, help="Seconds between polls of /master/state.")
@click.option("--resync-interval", default=180.0, show_default=True, help="Seconds between full Marathon resyncs.")
@click.option("--silence-timeout", default=60.0, show_default=True, help="Reopen a Marathon stream silent this long.")
@click.option("--max-document-mb", default=256, show_default=True, type=click.IntRange(1),
              help="Refuse a /master/state or /v2/apps reply (and a RecordIO frame) larger than this.")
@metrics_option
def produce(bootstrap, namespace, mesos_url, marathon_url, masters, mesos_poll, poll_interval, resync_interval, silence_timeout,
            max_document_mb, metrics_listen):
    """Publish Mesos and Marathon state changes into Kafka (differences only)."""
    from producers.run import ProducerOptions, Producers

    if not (mesos_url or marathon_url):
        raise click.UsageError("give --mesos, --marathon or both")
    options = ProducerOptions(
        bootstrap=resolve_bootstrap(bootstrap),
        catalog=Catalog(namespace),
        mesos_url=mesos_url,
        marathon_url=marathon_url,
        masters=masters,
        mesos_poll_only=mesos_poll,
        mesos_poll_interval=poll_interval,
        marathon_resync_interval=resync_interval,
        marathon_silence_timeout=silence_timeout,
        max_document_bytes=max_document_mb * 1024 * 1024,
        max_record_bytes=max_document_mb * 1024 * 1024,
    )
    from runtime.metrics import PRODUCER_CLOCK, serving

    run_until_signal(serving(metrics_listen, Producers(options).run, PRODUCER_CLOCK))


@main.command()
@config_option
@log_options
@bootstrap_option
@namespace_option
@click.option("--dns-ip-sources", default="host,netinfo", show_default=True,
              help="Where task addresses come from, in order: host, netinfo, mesos, docker.")
@click.option("--dns-ip-merge", type=click.Choice(["dcos", "first"]), default="dcos", show_default=True,
              help="dcos: one IPv4 and one IPv6 from all sources in order; first: every address of the first source that has any (upstream Mesos-DNS).")
@click.option("--dns-rfc952", is_flag=True, help="RFC 952 labels (24 characters, no leading digits) instead of RFC 1123.")
@click.option("--dns-no-legacy-names", is_flag=True,
              help="Do not also publish names under the raw DiscoveryInfo name (Mesos-DNS does).")
@click.option("--dns-ttl", default=60, show_default=True, help="TTL of the Mesos-DNS records.")
@click.option("--session-timeout-ms", default=6000, show_default=True, type=click.IntRange(min=100, max=300_000),
              help="How long a silent active processor keeps the role before a standby takes over (the "
                   "election group's session timeout; the broker's group.min.session.timeout.ms is the floor).")
@click.option("--overlay", "overlays", multiple=True, metavar="NAME=SUBNET,PREFIX",
              help="An overlay network and the prefix leased to each agent, e.g. dcos=9.0.0.0/8,24; repeat for "
                   "several. Default: dcos=9.0.0.0/8,24 and dcos6=fd01:b::/64,80 (DC/OS's).")
@click.option("--overlay-vtep", default="44.128.0.0/20", show_default=True, help="The VTEP IPv4 range (/8 to /30).")
@click.option("--overlay-vtep6", default="fd01:a::/64", show_default=True,
              help="The VTEP IPv6 range; empty: none (and so no IPv6 overlay).")
@click.option("--overlay-grace", default=600.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds a gone agent keeps its overlay leases before they are freed.")
@metrics_option
def process(bootstrap, namespace, dns_ip_sources, dns_ip_merge, dns_rfc952, dns_no_legacy_names, dns_ttl,
            session_timeout_ms, overlays, overlay_vtep, overlay_vtep6, overlay_grace, metrics_listen):
    """Run a stream processor: derive the VIP, DNS, HAProxy and overlay lease tables from the source topics.

    Run one or more: one is active, the others are warm standbys that take over when it stops."""
    from processors.app import Processor
    from processors.dns.config import PUBLISHED

    try:
        dns = dataclasses.replace(PUBLISHED, ip_sources=tuple(s for s in dns_ip_sources.split(",") if s),
                                  ip_merge=dns_ip_merge, enforce_rfc952=dns_rfc952,
                                  legacy_discovery_names=not dns_no_legacy_names, ttl=dns_ttl)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    from processors.overlay.config import parse_config
    from runtime.kafka.election import ElectionFailed
    from runtime.metrics import PROCESSOR_ACTIVE, serving

    try:
        overlay = parse_config(overlays, overlay_vtep, overlay_vtep6, overlay_grace)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    try:
        run_until_signal(serving(metrics_listen, Processor(resolve_bootstrap(bootstrap), Catalog(namespace), dns,
                                                           session_timeout_ms, overlay).run, PROCESSOR_ACTIVE))
    except ElectionFailed as error:
        raise click.ClickException(str(error)) from None


def _masters(value: str) -> list[str]:
    from schemas.addresses import is_malformed_ip, parse_host_port

    masters = [m.strip() for m in value.split(",") if m.strip()]
    for master in masters:
        host, _, _ = master.rpartition(":")
        if "[" not in master and is_malformed_ip(host):
            raise click.ClickException(f"--masters {master!r}: {host!r} is not an IP address")
        if parse_host_port(master) is None:
            raise click.BadParameter(f"{master!r} is not HOST:PORT or [IPv6]:PORT")
    return masters


@main.command()
@bootstrap_option
@namespace_option
@click.option("--json", "as_json", is_flag=True, help="A JSON list instead of lines.")
def status(bootstrap, namespace, as_json):
    """Each producer's and the processor's readiness mark: in sync or ready (and which outputs
    are, and what the others wait for), since when, heartbeat age, lag."""
    import time

    import orjson

    from processors.readiness import outputs_waiting, producers_by_output
    from processors.replay import processor_stages
    from runtime.kafka.status import read_marks
    from runtime.status import status_json, status_lines

    catalog = Catalog(namespace)
    marks = read_marks(one_shot_kafka(resolve_bootstrap(bootstrap), catalog, "status"), catalog.topic("status").name)
    producers = producers_by_output(catalog, {stage.output: stage.sources for stage in processor_stages(catalog)})
    waiting = outputs_waiting(marks, producers)
    now = time.time()
    if as_json:
        click.echo(orjson.dumps(status_json(marks, now, waiting), option=orjson.OPT_INDENT_2).decode())
    else:
        for line in status_lines(marks, now, waiting):
            click.echo(line)


@main.command()
@click.argument("name")
@bootstrap_option
@namespace_option
@click.option("--from-beginning", is_flag=True, help="Start at the oldest record instead of new ones.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--filter", "filters", multiple=True, metavar="FIELD=VALUE", help="Keep records whose value field (dotted path, or 'key') equals VALUE.")
@click.option("--max", "limit", type=int, default=None, help="Stop after this many records.")
@click.option("--timeout", type=float, default=None, help="Stop after this many seconds.")
def tail(name, bootstrap, namespace, from_beginning, as_json, filters, limit, timeout):
    """Follow topic NAME (a catalog alias: tasks, events, apps …)."""
    from cli import tail as tailing

    try:
        catalog = Catalog(namespace)
        chosen = catalog.topic(name)
        parsed = tailing.parse_filters(filters)
    except (KeyError, ValueError) as error:
        raise click.BadParameter(str(error.args[0])) from None
    out = sys.stdout.buffer
    try:
        for record, value in tailing.tail(one_shot_kafka(resolve_bootstrap(bootstrap), catalog, name), chosen, from_beginning, parsed, limit, timeout):
            out.write(tailing.as_json(record, value) + b"\n" if as_json else (tailing.as_line(name, record, value) + "\n").encode())
            out.flush()
    except KeyboardInterrupt:
        pass


@main.command()
@bootstrap_option
@namespace_option
def topics(bootstrap, namespace):
    """List the topic catalog; given a Kafka (--bootstrap, --kafka-config or $WAYFINDER_BOOTSTRAP),
    also each topic's partitions there, or `missing`."""
    from runtime.settings import given_bootstrap

    kafka = given_bootstrap(bootstrap)
    counts = None
    if kafka:  # without one the catalog alone is still useful: it needs no cluster
        from confluent_kafka import KafkaException

        from runtime.kafka.topics import partition_counts

        try:
            counts = partition_counts(kafka)
        except KafkaException as error:
            raise click.ClickException(f"cannot reach Kafka at {kafka}: {error.args[0].str()}") from None
    for t in Catalog(namespace).topics:
        kind = "table" if t.compacted else "log"
        line = f"{t.alias:<11} {t.name:<28} {kind:<5} key={t.key:<28} value={t.schema_id}"
        if counts is not None:
            line += f"  partitions={counts[t.name]}" if t.name in counts else "  missing"
        click.echo(line)


@main.command()
@click.option("--write", is_flag=True, help="Rewrite the checked-in files instead of checking them.")
def schemas(write):
    """Check (or --write) the published JSON Schema and AsyncAPI files."""
    from schemas import publish

    if write:
        for path in publish.write():
            click.echo(path)
        return
    stale = [str(path) for path, data in publish.rendered().items() if not path.exists() or path.read_bytes() != data]
    if stale:
        raise click.ClickException("out of date (run `wayfinder schemas --write`): " + ", ".join(stale))
    click.echo("published schemas are up to date")


@main.command()
@log_options
@click.option("--bootstrap", envvar="WAYFINDER_BOOTSTRAP", default=None, help="Use this Kafka instead of starting one.")
@click.option("--kafka-dir", type=click.Path(path_type=Path), default=Path(".wayfinder/kafka"), show_default=True,
              help="Where the demo's own Kafka lives.")
@namespace_option
@click.option("--duration", type=float, default=None, help="Stop by itself after this many seconds.")
@click.option("--base-port", type=click.IntRange(1024, 65000), default=29092, show_default=True,
              help="Base port of the demo's own Kafka (see `wayfinder kafka up`); a stopped one moves there.")
@click.pass_context
def demo(ctx, bootstrap, kafka_dir, namespace, duration, base_port):
    """Kafka, the simulator, producers, processor, the live history, and a client reaching a VIP by name."""
    from click.core import ParameterSource

    from cli.demo.lines import quiet_logs
    from cli.demo.run import run_demo

    # Its own default level: a person watching sees our warnings, not the clients' retries.
    given = {ctx.get_parameter_source("level"), ctx.find_root().get_parameter_source("log_level")}
    settings = ctx.find_root().meta.get("wayfinder.logs", {})
    quiet_logs(chosen_level=bool(given - {ParameterSource.DEFAULT, None}), json_logs=settings.get("format") == "json")
    run_until_signal(lambda stop: run_demo(stop, bootstrap, kafka_dir, namespace, duration, base_port))
