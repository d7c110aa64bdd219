"""The `wayfinder` command line."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import sys
from pathlib import Path

import click

from runtime.settings import bootstrap_option, namespace_option, resolve_bootstrap
from schemas.catalog import Catalog


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def run_until_signal(main, *, fast_loop: bool = False) -> None:
    """Run ``main(stop)`` on a fresh event loop; SIGINT/SIGTERM set ``stop`` for a clean exit.
    ``fast_loop``: uvloop instead of asyncio's own loop (the node's DNS server spends ~25%
    less CPU per query on it)."""

    async def runner():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    if fast_loop:
        import uvloop

        uvloop.run(runner())
    else:
        asyncio.run(runner())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]), show_default=True)
def main(log_level: str) -> None:
    """Wayfinder: container networking for Mesos and Marathon, built on Kafka."""
    configure_logging(log_level)


@main.command()
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
def produce(bootstrap, namespace, mesos_url, marathon_url, masters, mesos_poll, poll_interval, resync_interval, silence_timeout,
            max_document_mb):
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
    run_until_signal(Producers(options).run)


@main.command()
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
def process(bootstrap, namespace, dns_ip_sources, dns_ip_merge, dns_rfc952, dns_no_legacy_names, dns_ttl,
            session_timeout_ms, overlays, overlay_vtep, overlay_vtep6, overlay_grace):
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

    try:
        overlay = parse_config(overlays, overlay_vtep, overlay_vtep6, overlay_grace)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    try:
        run_until_signal(Processor(resolve_bootstrap(bootstrap), Catalog(namespace), dns, session_timeout_ms,
                                   overlay).run)
    except ElectionFailed as error:
        raise click.ClickException(str(error)) from None


def _masters(value: str) -> list[str]:
    from schemas.addresses import parse_host_port

    masters = [m.strip() for m in value.split(",") if m.strip()]
    for master in masters:
        if parse_host_port(master) is None:
            raise click.BadParameter(f"{master!r} is not HOST:PORT or [IPv6]:PORT")
    return masters


def _dns_workers(ctx, param, value) -> int:
    from appliers.options import dns_workers_from

    try:
        return dns_workers_from(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


@main.command()
@bootstrap_option
@namespace_option
@click.option("--node-id", required=True, help="This node's name (for logs and metrics).")
@click.option("--agent-ip", required=True, help="This node's agent IP.")
@click.option("--roles", default="l4lb,dns", show_default=True, help="Comma-separated roles to run: l4lb, dns, haproxy, overlay.")
@click.option("--dns-listen", default="127.0.0.1:53", show_default=True, help="Where the node's DNS server listens (UDP and TCP).")
@click.option("--netns", default=None, help="Program the kernel inside this named network namespace.")
@click.option("--route-dev", default=None, help="Device for the routes that let the node itself reach VIPs.")
@click.option("--resync-interval", default=30.0, show_default=True, help="Seconds between full kernel resyncs.")
@click.option("--dns-http", default=None, metavar="HOST:PORT", help="Serve the Mesos-DNS HTTP API (/v1/...) here.")
@click.option("--upstream", "upstreams", multiple=True, metavar="IP[:PORT]",
              help="Default upstream resolver for names outside the cluster zones (repeatable).")
@click.option("--forward-zone", "forward_zones", multiple=True, metavar="ZONE=IP[:PORT][,IP[:PORT]...]",
              help="Upstreams for one zone, ahead of the defaults (repeatable).")
@click.option("--mesos-dns", "mesos_dns", multiple=True, metavar="IP[:PORT]",
              help="Forward the mesos zone to the masters' Mesos-DNS instead of serving it from the dns topic (repeatable).")
@click.option("--allow-recursion", "allow_recursion", multiple=True, metavar="CIDR",
              help="Networks allowed to resolve outside names through this node (default: loopback and the node's own networks).")
@click.option("--dns-tcp-per-client", default=32, show_default=True, type=click.IntRange(1),
              help="DNS over TCP: connections one client address may hold (past it, its longest-idle one closes).")
@click.option("--dns-tcp-max", default=1024, show_default=True, type=click.IntRange(1),
              help="DNS over TCP: connections in all (past it, the heaviest client's longest-idle one closes).")
@click.option("--dns-tcp-idle", default=10.0, show_default=True, type=click.FloatRange(0.1),
              help="DNS over TCP: seconds a connection may wait idle for its next query.")
@click.option("--dns-soa-mname", default="ns1.mesos", show_default=True,
              help="The mesos zone's SOA MNAME (and NS), as Mesos-DNS's SOAMname.")
@click.option("--dns-soa-rname", default="root.ns1.mesos", show_default=True,
              help="The mesos zone's SOA RNAME, as Mesos-DNS's SOARname (root@ns1.mesos also works).")
@click.option("--dns-workers", default="1", show_default=True, metavar="N|auto", callback=_dns_workers,
              help="DNS server processes sharing the DNS port (SO_REUSEPORT), each following the dns topic; "
                   "auto: one per CPU. 1 serves from the node's own process.")
@click.option("--haproxy-group", "haproxy_groups", default="*", show_default=True, metavar="GROUP[,GROUP...]",
              help="The marathon-lb groups (HAPROXY_GROUP) this node serves; * serves every app, with or without a group.")
@click.option("--haproxy-dir", default="/var/lib/wayfinder/haproxy", show_default=True,
              help="Where the haproxy role keeps its config, sockets and self-signed certificate.")
@click.option("--haproxy-ports", default="http=80,https=443,appid=9091,stats=9090", show_default=True,
              help="The shared frontends' ports: vhost HTTP, HTTPS by SNI, X-Marathon-App-Id, stats and /metrics.")
@click.option("--haproxy-bind", default="*", show_default=True, help="The address the frontends bind ('*': all).")
@click.option("--haproxy-ssl-cert", default=None, help="PEM (certificate and key) for HTTPS; default: a self-signed one.")
@click.option("--no-haproxy-health-check", is_flag=True,
              help="Serve tasks whatever their Marathon health (marathon-lb without --health-check).")
@click.option("--overlay-dir", default="/var/lib/wayfinder/overlay", show_default=True,
              help="Where the overlay role writes the CNI network configs (the Mesos agent's --network_cni_config_dir).")
def node(bootstrap, namespace, node_id, agent_ip, roles, dns_listen, netns, route_dev, resync_interval,
         dns_http, upstreams, forward_zones, mesos_dns, allow_recursion, dns_tcp_per_client, dns_tcp_max,
         dns_tcp_idle, dns_soa_mname, dns_soa_rname, dns_workers, haproxy_groups, haproxy_dir, haproxy_ports,
         haproxy_bind, haproxy_ssl_cert, no_haproxy_health_check, overlay_dir):
    """Run this node's roles: apply the derived topics to the kernel, serve DNS, run HAProxy."""
    from appliers.haproxy.settings import parse_settings
    from appliers.node import Node, NodeOptions

    try:
        haproxy = parse_settings(groups=haproxy_groups, ports=haproxy_ports, bind=haproxy_bind,
                                 ssl_cert=haproxy_ssl_cert, health_check=not no_haproxy_health_check,
                                 directory=haproxy_dir)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None

    options = NodeOptions(
        bootstrap=resolve_bootstrap(bootstrap), catalog=Catalog(namespace), node_id=node_id, agent_ip=agent_ip,
        roles=tuple(r for r in roles.split(",") if r), netns=netns, route_dev=route_dev,
        resync_interval=resync_interval, dns_listen=_host_port(dns_listen),
        dns_http=_host_port(dns_http) if dns_http else None, upstreams=upstreams,
        forward_zones=_forward_zones(forward_zones), mesos_dns=mesos_dns,
        allow_recursion=allow_recursion or None, tcp_connections_per_client=dns_tcp_per_client,
        max_tcp_connections=dns_tcp_max, tcp_idle_timeout=dns_tcp_idle, dns_workers=dns_workers,
        dns_soa_mname=dns_soa_mname, dns_soa_rname=dns_soa_rname, haproxy=haproxy, overlay_dir=overlay_dir,
    )
    try:
        running = Node(options)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    run_until_signal(running.run, fast_loop=True)


@main.command()
@bootstrap_option
@namespace_option
@click.option("--netns", default=None, help="Read the kernel of this named network namespace.")
@click.option("--json", "as_json", is_flag=True, help="A JSON list instead of lines.")
def vips(bootstrap, namespace, netns, as_json):
    """What the node's kernel has programmed, next to what the vips topic asks for."""
    import orjson

    from appliers.l4lb.inspect import as_lines, compare
    from appliers.l4lb.kernel import Kernel
    from runtime.kafka.reader import read_table
    from schemas import codec
    from schemas.l4lb import Vip

    topic = Catalog(namespace).topic("vips")
    wanted = {k: codec.decode(v, Vip) for k, v in read_table(resolve_bootstrap(bootstrap), topic.name).items()}
    kernel = Kernel(netns)
    try:
        entries = compare(wanted, kernel.read())
    finally:
        kernel.close()
    if as_json:
        click.echo(orjson.dumps(entries, option=orjson.OPT_INDENT_2).decode())
    else:
        for line in as_lines(entries):
            click.echo(line)


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
    marks = read_marks(resolve_bootstrap(bootstrap), catalog.topic("status").name)
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
        chosen = Catalog(namespace).topic(name)
        parsed = tailing.parse_filters(filters)
    except (KeyError, ValueError) as error:
        raise click.BadParameter(str(error.args[0])) from None
    out = sys.stdout.buffer
    try:
        for record, value in tailing.tail(resolve_bootstrap(bootstrap), chosen, from_beginning, parsed, limit, timeout):
            out.write(tailing.as_json(record, value) + b"\n" if as_json else (tailing.as_line(name, record, value) + "\n").encode())
            out.flush()
    except KeyboardInterrupt:
        pass


@main.command()
@namespace_option
def topics(namespace):
    """List the topic catalog."""
    for t in Catalog(namespace).topics:
        kind = "table" if t.compacted else "log"
        click.echo(f"{t.alias:<11} {t.name:<28} {kind:<5} key={t.key:<28} value={t.schema_id}")


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
@click.option("--bootstrap", envvar="WAYFINDER_BOOTSTRAP", default=None, help="Use this Kafka instead of starting one.")
@click.option("--kafka-dir", type=click.Path(path_type=Path), default=Path(".wayfinder/kafka"), show_default=True,
              help="Where the demo's own Kafka lives.")
@namespace_option
@click.option("--duration", type=float, default=None, help="Stop by itself after this many seconds.")
def demo(bootstrap, kafka_dir, namespace, duration):
    """Kafka, the simulator, producers, processor, the live history, and a client reaching a VIP by name."""
    from cli.demo.run import run_demo

    run_until_signal(lambda stop: run_demo(stop, bootstrap, kafka_dir, namespace, duration))


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def _forward_zones(values: tuple[str, ...]) -> dict[str, list[str]]:
    zones: dict[str, list[str]] = {}
    for value in values:
        zone, sep, servers = value.partition("=")
        if not sep or not zone or not servers:
            raise click.BadParameter(f"expected ZONE=IP[:PORT][,IP[:PORT]...], got {value!r}", param_hint="--forward-zone")
        zones.setdefault(zone.lower().rstrip(".") + ".", []).extend(s for s in servers.split(",") if s)
    return zones


def _register_subcommands() -> None:
    from cli.kafka import kafka_group
    from cli.overlay import overlay_group
    from simulator.commands import simulate_command

    main.add_command(kafka_group, "kafka")
    main.add_command(overlay_group, "overlay")
    main.add_command(simulate_command, "simulate")


_register_subcommands()
