"""What a node runs with: `wayfinder node`'s options, shared by every role."""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.catalog import Catalog


@dataclass
class NodeOptions:
    bootstrap: str
    catalog: Catalog
    node_id: str
    agent_ip: str
    roles: tuple[str, ...] = ("l4lb",)
    catch_up_timeout: float = 600.0  # seconds for a role to read its whole topic at start
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
    # DNS over TCP (appliers/dns/tcp.py): past a limit, the heaviest client's longest-idle
    # connection gives way, so one client cannot take TCP from the others.
    tcp_connections_per_client: int = 32
    max_tcp_connections: int = 1024
    tcp_idle_timeout: float = 10.0  # seconds to wait for the next query on a connection
