"""Services + settings + slot assignment -> haproxy.cfg text. Pure and deterministic.

Section order: global, defaults, the stats listener, userlists, the shared frontends
(marathon_http_in, marathon_https_in, marathon_http_appid_in), one frontend per service port,
then one backend per service; services in (app id, service port) order.

Where this differs from marathon-lb on purpose:
- every per-service policy (auth, network ACL, HTTPS redirect, HSTS, path rewrites) lives in
  the backend, so it holds on every entry point (marathon-lb's per-port and app-id frontends
  skipped AUTH), and the shared frontends only choose a backend: a rule of one service can
  never act on a request that a higher-weight rule routes to another;
- servers are pre-allocated slots (slots.py) so membership changes need no reload; a port
  whose servers are all gone keeps its frontend and backend and answers 503;
- vhosts match the Host header without its port;
- conflicts between services are refused first (selection.py), never left for `haproxy -c`
  to fail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping

from appliers.haproxy.selection import LeftOut, select
from appliers.haproxy.settings import HaproxySettings
from schemas.haproxy import HealthCheck, Server, Service

HTTP_FRONTEND = "marathon_http_in"
HTTPS_FRONTEND = "marathon_https_in"
APPID_FRONTEND = "marathon_http_appid_in"
STICKY_COOKIE = "mesosphere_server_id"
HSTS_HEADER = "max-age=15768000"
# An empty slot: disabled, so nothing is sent to it; the runtime API gives it a real address.
EMPTY_SLOT = ("127.0.0.1", 1)
MIN_SLOTS = 4


# ---- slots: how one pre-allocated server line looks -------------------------------------

@dataclass(frozen=True)
class BackendSlots:
    """The servers of one backend by slot: index i is the server line named s<i+1>."""

    servers: tuple[Server | None, ...]

    @property
    def capacity(self) -> int:
        return len(self.servers)


Assignment = Mapping[str, BackendSlots]  # backend name -> its slots


@dataclass(frozen=True)
class SlotState:
    """What HAProxy should hold for one slot (and what the runtime API sets)."""

    ip: str
    port: int
    weight: int  # 0: draining, no new connections (sticky sessions still reach it)
    ready: bool  # False: maintenance, gets nothing
    check_port: int | None = None  # where the health check connects; None: no check


def slot_name(index: int) -> str:
    return f"s{index + 1}"


def slot_capacity(server_count: int) -> int:
    """A power of two >= max(MIN_SLOTS, server_count): room to scale without a reload."""
    capacity = MIN_SLOTS
    while capacity < server_count:
        capacity *= 2
    return capacity


def slot_state(server: Server | None, settings: HaproxySettings, check: HealthCheck | None = None) -> SlotState:
    pinned = pinned_check_port(server, check)
    if server is None:
        return SlotState(EMPTY_SLOT[0], EMPTY_SLOT[1], 1, False, None if check is None else pinned or EMPTY_SLOT[1])
    unhealthy = settings.health_check and server.healthy is False
    return SlotState(server.ip, server.port, 0 if server.draining else 1, not unhealthy,
                     None if check is None else pinned or server.port)


def pinned_check_port(server: Server | None, check: HealthCheck | None) -> int | None:
    """The check port written in a server line (the server's own check port, else the
    service's); None lets the check follow the server's port."""
    if check is None:
        return None
    if server is not None and server.check_port is not None:
        return server.check_port
    return check.port


@dataclass(frozen=True)
class Rendered:
    text: str
    left_out: tuple[LeftOut, ...]


# ---- the config ---------------------------------------------------------------------------

def render(services: Iterable[Service], settings: HaproxySettings, slots: Assignment) -> Rendered:
    """The whole haproxy.cfg for the services this node serves. A backend missing from `slots`
    gets the capacity its servers need, in server-name order (what slots.assign would give)."""
    selection = select(services, settings)
    chosen = selection.services
    lines: list[str] = []
    lines += _global(settings)
    lines += _defaults()
    lines += _stats(settings)
    for service in chosen:
        if service.auth is not None:
            lines += _userlist(service)
    lines += _http_frontend(chosen, settings)
    lines += _https_frontend(chosen, settings)
    lines += _appid_frontend(chosen, settings)
    for service in chosen:
        lines += _port_frontend(service, settings)
    for service in chosen:
        backend_slots = slots.get(service.backend) or _fresh_slots(service)
        lines += _backend(service, settings, backend_slots)
    return Rendered("\n".join(lines).rstrip("\n") + "\n", selection.left_out)


def _fresh_slots(service: Service) -> BackendSlots:
    servers: list[Server | None] = list(service.servers)
    servers += [None] * (slot_capacity(len(servers)) - len(servers))
    return BackendSlots(tuple(servers))


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _global(settings: HaproxySettings) -> list[str]:
    return [
        "global",
        "  master-worker",
        f"  hard-stop-after {settings.hard_stop_after}",
        f"  stats socket {settings.stats_socket} mode 600 level admin expose-fd listeners",
        "  stats timeout 2m",
        "  spread-checks 5",
        "  max-spread-checks 15000",
        "  tune.ssl.default-dh-param 2048",
        "  ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets",
        "",
    ]


def _defaults() -> list[str]:
    # marathon-lb's timeouts and default options
    return [
        "defaults",
        "  retries 3",
        "  backlog 10000",
        "  maxconn 10000",
        "  timeout connect 3s",
        "  timeout client 30s",
        "  timeout server 30s",
        "  timeout tunnel 3600s",
        "  timeout http-keep-alive 1s",
        "  timeout http-request 15s",
        "  timeout queue 30s",
        "  timeout tarpit 60s",
        "  option dontlognull",
        "  option http-server-close",
        "  option redispatch",
        "",
    ]


def _stats(settings: HaproxySettings) -> list[str]:
    return [
        "listen stats",
        f"  bind {_address(settings.bind, settings.ports.stats)}",
        "  mode http",
        "  stats enable",
        "  monitor-uri /_haproxy_health_check",
        "  http-request use-service prometheus-exporter if { path /metrics }",
        "  stats uri /haproxy?stats",
        "",
    ]


def _userlist(service: Service) -> list[str]:
    auth = service.auth
    return [f"userlist user_{service.backend}", f"  user {auth.user} password {auth.password_hash}", ""]


def _by_rule_order(services: Iterable[Service]) -> list[Service]:
    """Vhost rules: the largest weight first, then (app id, service port)."""
    return sorted(services, key=lambda s: (-s.weight, s.app_id, s.service_port))


def _vhost_services(services: Iterable[Service]) -> list[Service]:
    # A tcp backend cannot be used from an http frontend (`haproxy -c` refuses it).
    return _by_rule_order(s for s in services if s.mode == "http" and s.vhosts)


def _http_frontend(services: tuple[Service, ...], settings: HaproxySettings) -> list[str]:
    lines = ["frontend " + HTTP_FRONTEND, f"  bind {_address(settings.bind, settings.ports.http)}", "  mode http"]
    for service in _vhost_services(services):
        be = service.backend
        lines.append(f"  acl host_{be} hdr(host),field(1,:) -i {' '.join(service.vhosts)}")
        condition = f"host_{be}"
        if service.path:
            lines.append(f"  acl path_{be} path_beg {service.path}")
            condition += f" path_{be}"
        lines.append(f"  use_backend {be} if {condition}")
    return lines + [""]


def _https_frontend(services: tuple[Service, ...], settings: HaproxySettings) -> list[str]:
    lines = [
        "frontend " + HTTPS_FRONTEND,
        f"  bind {_address(settings.bind, settings.ports.https)} ssl crt {settings.cert_path}",
        "  mode http",
    ]
    for service in _vhost_services(services):
        be = service.backend
        condition = f"{{ ssl_fc_sni -i {' '.join(service.vhosts)} }}"
        if service.path:
            lines.append(f"  acl path_{be} path_beg {service.path}")
            condition += f" path_{be}"
        lines.append(f"  use_backend {be} if {condition}")
    return lines + [""]


def _appid_frontend(services: tuple[Service, ...], settings: HaproxySettings) -> list[str]:
    lines = ["frontend " + APPID_FRONTEND, f"  bind {_address(settings.bind, settings.ports.appid)}", "  mode http"]
    apps: set[str] = set()
    for service in services:  # (app id, service port) order: the app's first http port wins
        if service.mode != "http" or service.app_id in apps:
            continue
        apps.add(service.app_id)
        lines.append(f"  use_backend {service.backend} if {{ hdr(x-marathon-app-id) -i {service.app_id} }}")
    return lines + [""]


def _port_frontend(service: Service, settings: HaproxySettings) -> list[str]:
    addr = settings.bind if service.bind_addr == "*" else service.bind_addr
    bind = f"  bind {_address(addr, service.bind_port)}"
    if service.ssl_cert:
        bind += f" ssl crt {service.ssl_cert}"
    if service.bind_options:
        bind += f" {service.bind_options}"
    lines = [f"frontend {service.backend}", bind, f"  mode {service.mode}"]
    lines += [f"  {line}" for line in service.frontend_options]
    return lines + [f"  use_backend {service.backend}", ""]


def _backend(service: Service, settings: HaproxySettings, backend_slots: BackendSlots) -> list[str]:
    be = service.backend
    http = service.mode == "http"
    lines = [f"backend {be}", f"  balance {service.balance}", f"  mode {service.mode}"]
    if service.network_allowed:
        lines.append(f"  acl network_allowed src {' '.join(service.network_allowed)}")
        lines.append("  http-request deny if !network_allowed" if http
                     else "  tcp-request content reject if !network_allowed")
    if http:
        lines += _http_backend_rules(service)
    check = service.health_check
    if check is not None:
        if http and check.kind == "http":
            lines.append(f"  option httpchk GET {check.path or '/'}")
        lines.append(f"  timeout check {check.timeout_s}s")
    lines += [f"  {line}" for line in service.backend_options]
    for index, server in enumerate(backend_slots.servers):
        state = slot_state(server, settings, check)
        lines.append(_server_line(service, index, state, pinned_check_port(server, check)))
    return lines + [""]


def _http_backend_rules(service: Service) -> list[str]:
    be = service.backend
    lines = []
    if service.redirect_to_https:
        # Only requests that came in through the shared plain-HTTP frontend, as marathon-lb.
        lines.append(f"  http-request redirect scheme https code 301 if !{{ ssl_fc }} {{ fe_name {HTTP_FRONTEND} }}")
    if service.auth is not None:
        lines.append(f'  http-request auth realm "{service.auth.realm}" if !{{ http_auth(user_{be}) }}')
    if service.redirect_path:
        lines.append(f"  http-request redirect location {service.redirect_path} code 301 if {{ path / }}")
    if service.proxypass_path:
        if service.vhosts:
            lines.append(f"  http-request set-header Host {service.vhosts[0]}")
        prefix = _regex_literal(service.proxypass_path.rstrip("/"))
        lines.append(f"  http-request replace-path '^{prefix}/?(.*)$' '/\\1'")
    lines += [
        "  option forwardfor",
        "  http-request set-header X-Forwarded-Port %[dst_port]",
        "  http-request add-header X-Forwarded-Proto https if { ssl_fc }",
    ]
    if service.use_hsts:
        lines.append(f"  http-response set-header Strict-Transport-Security {HSTS_HEADER}")
    if service.revproxy_path:
        root = service.revproxy_path.rstrip("/")
        lines.append(f"  http-response replace-header Location '^(https?://[^/]+)?(/.*)$' '\\1{root}\\2'")
    if service.sticky:
        lines.append(f"  cookie {STICKY_COOKIE} insert indirect nocache")
    return lines


def _regex_literal(text: str) -> str:
    return re.sub(r"([.^$*+?()\[\]{}|])", r"\\\1", text)


def _server_line(service: Service, index: int, state: SlotState, check_port: int | None) -> str:
    name = slot_name(index)
    line = f"  server {name} {_address(state.ip, state.port)}"
    if service.sticky and service.mode == "http":
        line += f" cookie {name}"
    check = service.health_check
    if check is not None:
        line += f" check inter {check.interval_s}s fall {check.fall}"
        if check_port is not None:
            line += f" port {check_port}"
    if state.weight != 1:
        line += f" weight {state.weight}"
    if not state.ready:
        line += " disabled"
    return line

