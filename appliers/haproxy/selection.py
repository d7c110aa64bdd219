"""Which services a node serves, and which it leaves out and why. Pure.

A node serves the services of its groups (`*`: every group, and apps with none), each app
port once. Services that cannot sit next to the ones before them in key order (the same
backend name, the same bind port, a shared frontend's port) or whose values would break the
config text are left out with a reason, so one service never makes `haproxy -c` fail for all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from appliers.haproxy.settings import HaproxySettings
from schemas.haproxy import Service, service_key

_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")  # what HAProxy takes as a proxy or ACL name


@dataclass(frozen=True)
class LeftOut:
    key: str
    reason: str


@dataclass(frozen=True)
class Selection:
    services: tuple[Service, ...]  # served, in (app id, service port) order
    left_out: tuple[LeftOut, ...]


def key_of(service: Service) -> str:
    return service_key(service.group, service.app_id, service.service_port)


def select(services: Iterable[Service], settings: HaproxySettings) -> Selection:
    """The services of the node's groups; with `*`, one per (app id, service port), the first
    by key. Then, in key order, a service that cannot be rendered next to the ones before it
    (same backend name, same bind port, a shared frontend's port) or whose values would
    break the config text is left out with the reason, and the others are served."""
    ours = sorted((s for s in services if settings.serves_group(s.group)), key=key_of)
    served: list[Service] = []
    left_out: list[LeftOut] = []
    seen_app_ports: set[tuple[str, int]] = set()
    backends: dict[str, str] = {}
    ports: dict[int, tuple[str, str]] = {}  # bind port -> (bind address, key)
    shared = {port: name for name, port in settings.ports.by_name().items()}
    for service in ours:
        key = key_of(service)
        if (service.app_id, service.service_port) in seen_app_ports:
            continue  # the same app port through another group: served once
        seen_app_ports.add((service.app_id, service.service_port))
        reason = unrenderable(service)
        if reason is None and service.backend in backends:
            reason = f"backend name {service.backend} is already used by {backends[service.backend]}"
        if reason is None and service.bind_port in shared:
            reason = f"port {service.bind_port} is the node's {shared[service.bind_port]} frontend"
        if reason is None and service.bind_port in ports:
            other_addr, other_key = ports[service.bind_port]
            if "*" in (other_addr, service.bind_addr) or other_addr == service.bind_addr:
                reason = f"port {service.bind_port} is already bound by {other_key}"
        if reason is not None:
            left_out.append(LeftOut(key, reason))
            continue
        backends[service.backend] = key
        ports[service.bind_port] = (service.bind_addr, key)
        served.append(service)
    served.sort(key=lambda s: (s.app_id, s.service_port))
    return Selection(tuple(served), tuple(left_out))


def unrenderable(service: Service) -> str | None:
    """Why this service's values cannot be written into haproxy.cfg as they are, or None.
    The processor validates labels; this guards the config text itself."""
    if not _NAME.match(service.backend):
        return f"backend name {service.backend!r} has characters HAProxy does not take in a name"
    if service.mode not in ("http", "tcp"):
        return f"mode {service.mode!r} is neither http nor tcp"
    if not 1 <= service.bind_port <= 65535:
        return f"bind port {service.bind_port} is out of range"
    words = [service.bind_addr, *service.vhosts, *service.network_allowed]
    if service.ssl_cert:
        words.append(service.ssl_cert)
    if service.health_check and service.health_check.path:
        words.append(service.health_check.path)
    if service.auth:
        words += [service.auth.user, service.auth.password_hash]
    for word in words:
        if not word or any(c.isspace() or c in "#'\"\\" for c in word):
            return f"{word!r} is not one word of plain characters"
    lines = [service.balance, service.path or "", service.bind_options or "", service.redirect_path or "",
             *service.frontend_options, *service.backend_options]
    if service.auth:
        lines.append(service.auth.realm)
    for text in lines:
        if "\n" in text or "\r" in text or "#" in text:
            return f"{text!r} holds a line break or '#'"
    for text in (service.proxypass_path, service.revproxy_path, service.auth.realm if service.auth else None):
        if text is not None and any(c in text for c in "'\"\\"):
            return f"{text!r} holds a quote or a backslash"
    for server in service.servers:
        if not _NAME.match(server.name) or not 1 <= server.port <= 65535 or not _ip_like(server.ip):
            return f"server {server.name!r} at {server.ip}:{server.port} is not a name and address HAProxy takes"
    return None


def _ip_like(ip: str) -> bool:
    return bool(ip) and all(c in "0123456789abcdefABCDEF.:" for c in ip)
