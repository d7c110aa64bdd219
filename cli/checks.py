"""The common mistakes on a command line, refused with one line (click prints "Error: ...",
exit 1) before anything starts: a bad IP, no roles or unknown ones, a missing namespace, a
port another process holds, a --haproxy-dir another node uses."""

from __future__ import annotations

import errno
import ipaddress
import socket
from pathlib import Path

import click

NETNS_DIR = Path("/run/netns")  # where `ip netns add` puts named namespaces


def check_ip(value: str, option: str) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise click.ClickException(f"{option} {value!r} is not an IP address") from None


def check_roles(roles: tuple[str, ...], known: tuple[str, ...]) -> None:
    if not roles:
        raise click.ClickException(f"no roles given: --roles takes one or more of {','.join(known)}")
    if unknown := [r for r in roles if r not in known]:
        raise click.ClickException(f"unknown role(s) {', '.join(unknown)} in --roles; known: {','.join(known)}")


def check_netns(name: str | None) -> None:
    if name is not None and not (NETNS_DIR / name).exists():
        raise click.ClickException(f"network namespace {name!r} (--netns) does not exist; `ip netns add {name}` creates it")


def check_port_free(what: str, host: str, port: int, udp: bool = False) -> None:
    """Bind and release `host:port` (TCP, and UDP with `udp`) as the server will; a port in use
    is named with its option. SO_REUSEADDR as asyncio's servers set it, so a port left in
    TIME_WAIT by a previous run is no false alarm."""
    kinds = [socket.SOCK_STREAM] + ([socket.SOCK_DGRAM] if udp else [])
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for kind in kinds:
        with socket.socket(family, kind) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    proto = "UDP" if kind == socket.SOCK_DGRAM else "TCP"
                    raise click.ClickException(f"{what} {host}:{port} is in use ({proto}): another process listens there") from None
                if error.errno == errno.EADDRNOTAVAIL:
                    raise click.ClickException(f"{what} {host}:{port}: no interface has the address {host}") from None
                raise


def check_haproxy_dir_free(directory: str) -> None:
    """Another node's haproxy role holds `directory` (appliers/haproxy/directory_lock.py). The
    role takes the lock itself when it opens; this says it before anything starts."""
    from appliers.haproxy.directory_lock import DirectoryInUse, check_free

    try:
        check_free(directory)
    except DirectoryInUse as error:
        raise click.ClickException(str(error)) from None
