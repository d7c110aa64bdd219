"""`wayfinder node`: the options of a node's roles (l4lb, dns, haproxy, overlay) and its start."""

from __future__ import annotations

import click

from cli.config_file import config_option
from cli.running import log_options, run_until_signal
from runtime.metrics import serving
from runtime.metrics_option import metrics_option
from runtime.settings import bootstrap_option, namespace_option, resolve_bootstrap
from schemas.catalog import Catalog

def _dns_workers(ctx, param, value) -> int:
    from appliers.options import dns_workers_from

    try:
        return dns_workers_from(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


@click.command()
@config_option
@log_options
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
@click.option("--status-listen", default=None, metavar="HOST:PORT|SOCKET",
              help="Serve /v1/roles and /v1/vips (what `wayfinder vips --node` asks) here, or on this unix socket path.")
@metrics_option
def node(bootstrap, namespace, node_id, agent_ip, roles, dns_listen, netns, route_dev, resync_interval,
         dns_http, upstreams, forward_zones, mesos_dns, allow_recursion, dns_tcp_per_client, dns_tcp_max,
         dns_tcp_idle, dns_soa_mname, dns_soa_rname, dns_workers, haproxy_groups, haproxy_dir, haproxy_ports,
         haproxy_bind, haproxy_ssl_cert, no_haproxy_health_check, overlay_dir, status_listen, metrics_listen):
    """Run this node's roles: apply the derived topics to the kernel, serve DNS, run HAProxy."""
    from appliers.haproxy.settings import parse_settings
    from appliers.node import ROLES, Node, NodeOptions
    from cli import checks

    checks.check_roles(tuple(r for r in roles.split(",") if r), ROLES)
    checks.check_ip(agent_ip, "--agent-ip")
    checks.check_netns(netns)
    if "dns" in roles.split(","):
        checks.check_port_free("the DNS listen address (--dns-listen)", *_host_port(dns_listen), udp=True)
    if dns_http:
        checks.check_port_free("the Mesos-DNS HTTP API address (--dns-http)", *_host_port(dns_http))
    if status_listen and "/" not in status_listen:
        checks.check_port_free("the node status address (--status-listen)", *_host_port(status_listen))
    from runtime.kafka.client_config import installed_source, passed_through

    try:
        haproxy = parse_settings(groups=haproxy_groups, ports=haproxy_ports, bind=haproxy_bind,
                                 ssl_cert=haproxy_ssl_cert, health_check=not no_haproxy_health_check,
                                 directory=haproxy_dir)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    if "haproxy" in roles.split(","):
        checks.check_haproxy_dir_free(haproxy.directory)

    options = NodeOptions(
        bootstrap=resolve_bootstrap(bootstrap), catalog=Catalog(namespace), node_id=node_id, agent_ip=agent_ip,
        roles=tuple(r for r in roles.split(",") if r), netns=netns, route_dev=route_dev,
        resync_interval=resync_interval, dns_listen=_host_port(dns_listen),
        dns_http=_host_port(dns_http) if dns_http else None, upstreams=upstreams,
        forward_zones=_forward_zones(forward_zones), mesos_dns=mesos_dns,
        allow_recursion=allow_recursion or None, tcp_connections_per_client=dns_tcp_per_client,
        max_tcp_connections=dns_tcp_max, tcp_idle_timeout=dns_tcp_idle, dns_workers=dns_workers,
        dns_soa_mname=dns_soa_mname, dns_soa_rname=dns_soa_rname, haproxy=haproxy, overlay_dir=overlay_dir,
        kafka_settings=passed_through(), kafka_config_path=installed_source(), status_listen=status_listen,
    )
    try:
        running = Node(options)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    from appliers.haproxy.directory_lock import DirectoryInUse
    from appliers.metrics import NodeCollector

    try:
        run_until_signal(serving(metrics_listen, running.run, NodeCollector(running)), fast_loop=True)
    except DirectoryInUse as error:  # another node took the directory since the check above
        raise click.ClickException(str(error)) from None


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
