"""The node's HAProxy settings (`wayfinder node --roles haproxy --haproxy-*`). Pure: parsing
only, no file is touched here (the self-signed certificate is made by certificate.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from schemas.haproxy import NO_GROUP

EVERY_GROUP = "*"
SHARED_PORT_NAMES = ("http", "https", "appid", "stats")
DEFAULT_PORTS = "http=80,https=443,appid=9091,stats=9090"
# The certificate the node makes itself when no --haproxy-ssl-cert is given.
SELF_SIGNED_CERT_NAME = "self-signed.pem"
_DURATION = re.compile(r"^[0-9]+(us|ms|s|m|h|d)?$")


@dataclass(frozen=True)
class SharedPorts:
    """The ports of the frontends every node has (marathon-lb's 80, 443, 9091 and 9090)."""

    http: int = 80
    https: int = 443
    appid: int = 9091
    stats: int = 9090

    def by_name(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in SHARED_PORT_NAMES}


@dataclass(frozen=True)
class HaproxySettings:
    groups: tuple[str, ...] = (EVERY_GROUP,)
    ports: SharedPorts = SharedPorts()
    bind: str = "*"  # the shared frontends' address, and per-port frontends' unless a label names one
    ssl_cert: str | None = None  # None: <directory>/self-signed.pem, made by the node
    health_check: bool = True  # servers whose Marathon health is known bad are not served
    directory: str = "/var/lib/wayfinder/haproxy"
    # Old workers still holding connections after a reload end after this, so reloads never
    # pile up processes (marathon-lb set no limit: issues #519, #382).
    hard_stop_after: str = "30s"

    def serves_group(self, group: str) -> bool:
        return EVERY_GROUP in self.groups or group in self.groups

    @property
    def every_group(self) -> bool:
        return EVERY_GROUP in self.groups

    @property
    def cert_path(self) -> str:
        return self.ssl_cert or str(Path(self.directory) / SELF_SIGNED_CERT_NAME)

    @property
    def config_path(self) -> str:
        return str(Path(self.directory) / "haproxy.cfg")

    @property
    def stats_socket(self) -> str:
        return str(Path(self.directory) / "haproxy.sock")

    @property
    def master_socket(self) -> str:
        return str(Path(self.directory) / "master.sock")


def parse_groups(text: str) -> tuple[str, ...]:
    """`external,internal` -> ('external', 'internal'); `*` serves every group, including apps
    that name none. Sorted and deduplicated so the same groups always render the same config."""
    groups = sorted({part.strip() for part in text.split(",") if part.strip()})
    if not groups:
        raise ValueError("--haproxy-group needs at least one group name (or '*' for every group)")
    for group in groups:
        if group != EVERY_GROUP and not re.fullmatch(r"[A-Za-z0-9_.-]+", group):
            raise ValueError(f"--haproxy-group: {group!r} is not a group name (letters, digits, '_', '.', '-')")
    return tuple(groups)


def parse_ports(text: str) -> SharedPorts:
    """`http=80,https=443,appid=9091,stats=9090`; names left out keep their default."""
    values = SharedPorts().by_name()
    seen: set[str] = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, number = part.partition("=")
        name = name.strip().lower()
        if not sep or name not in values:
            raise ValueError(f"--haproxy-ports: {part!r} is not NAME=PORT with NAME one of {', '.join(SHARED_PORT_NAMES)}")
        if name in seen:
            raise ValueError(f"--haproxy-ports: {name} is given twice")
        seen.add(name)
        values[name] = _port(number.strip(), f"--haproxy-ports {name}")
    taken: dict[int, str] = {}
    for name, port in values.items():
        if port in taken:
            raise ValueError(f"--haproxy-ports: {taken[port]} and {name} both use port {port}")
        taken[port] = name
    return SharedPorts(**values)


def parse_settings(
    groups: str = EVERY_GROUP,
    ports: str = DEFAULT_PORTS,
    bind: str = "*",
    ssl_cert: str | None = None,
    health_check: bool = True,
    directory: str = HaproxySettings.directory,
    hard_stop_after: str = HaproxySettings.hard_stop_after,
) -> HaproxySettings:
    """The option strings of `wayfinder node` -> settings; ValueError says which option is wrong."""
    bind = bind.strip()
    if bind != "*" and not re.fullmatch(r"[0-9A-Fa-f.:]+", bind):
        raise ValueError(f"--haproxy-bind must be '*' or an IP address, got {bind!r}")
    if not _DURATION.match(hard_stop_after):
        raise ValueError(f"hard-stop-after must be an HAProxy duration like 30s, got {hard_stop_after!r}")
    if not directory:
        raise ValueError("--haproxy-dir must not be empty")
    for name, value in (("--haproxy-dir", directory), ("--haproxy-ssl-cert", ssl_cert or "")):
        if any(c.isspace() for c in value) or "#" in value:
            # the path goes into haproxy.cfg unquoted
            raise ValueError(f"{name} must not contain spaces or '#', got {value!r}")
    return HaproxySettings(
        groups=parse_groups(groups), ports=parse_ports(ports), bind=bind, ssl_cert=ssl_cert or None,
        health_check=health_check, directory=directory, hard_stop_after=hard_stop_after,
    )


def _port(text: str, what: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"{what}: {text!r} is not a port from 1 to 65535")
    return int(text)


__all__ = [
    "DEFAULT_PORTS", "EVERY_GROUP", "HaproxySettings", "NO_GROUP", "SharedPorts",
    "parse_groups", "parse_ports", "parse_settings",
]
