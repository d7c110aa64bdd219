"""What a node runs with: `wayfinder node`'s options, shared by every role."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from appliers.haproxy.settings import HaproxySettings
from schemas.catalog import Catalog


@dataclass
class NodeOptions:
    bootstrap: str
    catalog: Catalog
    node_id: str
    agent_ip: str
    roles: tuple[str, ...] = ("l4lb",)
    catch_up_timeout: float = 600.0  # seconds for a role to read its whole topic at start
    status_listen: str | None = None  # HOST:PORT or a unix socket path (appliers/status_server.py)
    # l4lb
    netns: str | None = None
    route_dev: str | None = None
    vip_ranges: tuple[str, ...] = ("11.0.0.0/8", "fd01:c::/64")
    resync_interval: float = 30.0
    # dns
    dns_listen: tuple[str, int] = ("127.0.0.1", 53)
    dns_http: tuple[str, int] | None = None  # the Mesos-DNS HTTP API, when wanted
    upstreams: tuple[str, ...] = ()  # IP[:PORT]
    forward_zones: dict[str, list[str]] = field(default_factory=dict)  # zone -> IP[:PORT] list
    mesos_dns: tuple[str, ...] = ()  # when set, the mesos zone is forwarded there, not served
    allow_recursion: tuple[str, ...] | None = None  # CIDRs; None: loopback and our networks
    dns_soa_mname: str = "ns1.mesos"  # the mesos zone's SOA, as Mesos-DNS's SOAMname/SOARname
    dns_soa_rname: str = "root.ns1.mesos"
    # DNS over TCP (appliers/dns/tcp.py): past a limit, the heaviest client's longest-idle
    # connection gives way, so one client cannot take TCP from the others.
    tcp_connections_per_client: int = 32
    max_tcp_connections: int = 1024
    tcp_idle_timeout: float = 10.0  # seconds to wait for the next query on a connection
    # DNS on every core (appliers/dns/workers.py): with more than one, that many processes
    # serve the same port (SO_REUSEPORT), each following the dns topic itself.
    dns_workers: int = 1
    dns_worker: int | None = None  # set inside worker k; None: the node's own process
    # haproxy (appliers/haproxy): groups, ports, directory, certificate, health checking
    haproxy: HaproxySettings = field(default_factory=HaproxySettings)
    # overlay (appliers/overlay): where the CNI network configs go (None: none written)
    overlay_dir: str | None = None
    # --kafka-config's settings, for the DNS worker processes: they are fresh interpreters, so
    # they do not share the node's process-wide client settings (runtime/kafka/client_config.py).
    kafka_settings: dict[str, str] = field(default_factory=dict)
    # The file they came from: the workers watch it too, for a rotated password.
    kafka_config_path: str | None = None


MAX_DNS_WORKERS = 64


def dns_workers_from(value: str | int, cpus: int | None = None) -> int:
    """`--dns-workers`: an integer in 1..MAX_DNS_WORKERS, or ``auto`` (one per CPU, `cpus` or
    os.cpu_count(), at most MAX_DNS_WORKERS). ValueError says what is wrong. Pure but for
    the CPU count when `cpus` is not given."""
    text = str(value).strip().lower()
    if text == "auto":
        count = cpus if cpus is not None else (os.cpu_count() or 1)
        return max(1, min(count, MAX_DNS_WORKERS))
    try:
        count = int(text)
    except ValueError:
        count = None
    if count is None or not 1 <= count <= MAX_DNS_WORKERS:
        raise ValueError(f"--dns-workers must be 'auto' or a whole number from 1 to {MAX_DNS_WORKERS}, got {value!r}")
    return count


def check_dns_workers(options: NodeOptions) -> None:
    """ValueError when `options.dns_workers` cannot work with the rest of the options."""
    workers = options.dns_workers
    if not 1 <= workers <= MAX_DNS_WORKERS:
        raise ValueError(f"--dns-workers must be from 1 to {MAX_DNS_WORKERS}, got {workers}")
    if workers == 1:
        return
    if "dns" not in options.roles:
        raise ValueError("--dns-workers above 1 needs the dns role")
    if options.dns_listen[1] == 0:
        raise ValueError("--dns-workers above 1 needs a fixed --dns-listen port (workers share it), not 0")
    if options.dns_http is not None and options.dns_http[1] == 0:
        raise ValueError("--dns-workers above 1 needs a fixed --dns-http port (workers share it), not 0")
