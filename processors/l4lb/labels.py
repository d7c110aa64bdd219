"""VIP declarations of one task, parsed from its labels (reference §3.1). Pure.

Two forms exist:

- DiscoveryInfo port labels (what Marathon and the SDK write): key ``VIP...``/``vip...``,
  value ``<name-or-ip>:<port>``, protocol from the discovery port, backend port chosen by the
  port's ``network-scope`` label (``container`` or absent: the task's IPs and the port
  number; ``host``: the agent IP and the number).
- Legacy task labels (Minuteman 1.x): key ``VIP_PORT<n>`` in any case, value
  ``tcp://<name-or-ip>:<port>`` or ``udp://...``; ``<n>`` indexes the task's expanded host
  port resources and the backend is the agent IP and that port.

A declaration that cannot be read becomes a ``Rejection`` and only that declaration is
dropped; the task's other VIPs are parsed as usual.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from dataclasses import dataclass
from typing import Literal

from schemas.mesos import DiscoveryPort, PortMapping, Task

PROTOCOLS = ("tcp", "udp")
MAX_PORT = 65535

_LEGACY_KEY = re.compile(r"vip_port(?P<index>[0-9]+)", re.IGNORECASE)
_LEGACY_VALUE = re.compile(r"(?P<protocol>tcp|udp)://(?P<vip>.*)", re.DOTALL)
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True, order=True)
class Rejection:
    """A VIP declaration that was dropped, and why.

    ``label`` is the label key it came from; a refusal about a whole named VIP (no free address
    left in its range) has no task and no label, and names the VIP in ``value``.
    """

    task_id: str
    label: str
    value: str
    why: str


@dataclass(frozen=True, order=True)
class VipRef:
    """Which VIP a declaration names, before any IP is allocated.

    IP VIPs: ``address`` is the canonical IP and ``framework`` is empty. Named VIPs: ``address``
    is the name exactly as the label wrote it and ``framework`` the framework's *name* (not its
    id), so every framework instance called ``marathon`` shares ``/web:80``, as in dcos-net.
    """

    protocol: str
    address: str
    port: int
    named: bool = False
    framework: str = ""


@dataclass(frozen=True)
class Declaration:
    """One VIP the task asks to be a backend of, and where its backend listens."""

    label: str
    value: str
    protocol: str
    address: str  # canonical IP (IP VIP) or the name as written (named VIP)
    named: bool
    vip_port: int
    scope: Literal["container", "host"]
    port: int  # container scope: the port on the task's IPs; host scope: the port on the agent


class BadVip(ValueError):
    """Why a VIP value cannot be read."""


def is_vip_key(key: str) -> bool:
    """Discovery port label keys that declare a VIP: ``VIP_0``, ``VIP_<uuid>``, ``vip`` (case as written)."""
    return key.startswith(("VIP", "vip"))


def split_vip(value: str) -> tuple[str, bool, int]:
    """``<name-or-ip>:<port>`` -> (canonical IP or name, named?, port). Raises BadVip."""
    found, why = _read_vip(value)
    if found is None:
        raise BadVip(why)
    return found


@lru_cache(maxsize=1 << 14)
def _read_vip(value: str) -> tuple[tuple[str, bool, int] | None, str]:
    """``_split_vip`` cached: every task of an app carries the same VIP values."""
    try:
        return _split_vip(value), ""
    except BadVip as error:
        return None, str(error)


def _split_vip(value: str) -> tuple[str, bool, int]:
    """``split_vip`` itself.

    The split is at the *last* ``:`` so IPv6 literals work bare (``fd01::1:80``) or bracketed
    (``[fd01::1]:80``). A name may not contain ``:``: that is how ``invalid-port::1234``
    (the old Minuteman fixture) is refused rather than read as the name ``invalid-port:``.
    """
    host, sep, port_text = value.rpartition(":")
    if not sep:
        raise BadVip("no ':<port>' after the VIP name or IP")
    if not _DIGITS.fullmatch(port_text):
        raise BadVip(f"port {port_text!r} is not a number")
    port = int(port_text)
    if not 0 < port <= MAX_PORT:
        raise BadVip(f"port {port} is outside 1-{MAX_PORT}")
    bracketed = host.startswith("[") and host.endswith("]")
    literal = host[1:-1] if bracketed else host
    try:
        address = ipaddress.ip_address(literal)
    except ValueError:
        address = None
    if address is not None and not (bracketed and address.version == 4):
        if address.version == 6 and address.scope_id:
            raise BadVip(f"scoped IPv6 address {literal!r} cannot be a VIP")
        return str(address), False, port
    if bracketed:
        raise BadVip(f"{host!r}: only IPv6 addresses go in brackets")
    if not host:
        raise BadVip("no VIP name or IP before the port")
    if ":" in host:
        raise BadVip(f"{host!r} is neither an IP address nor a name (names cannot hold ':')")
    return host, True, port


def _scope(port: DiscoveryPort) -> str | None:
    scope = port.labels.get("network-scope", "container")
    return scope if scope in ("container", "host") else None


def _host_port_of(mappings: list[PortMapping], protocol: str, container_port: int) -> int | None:
    """The agent port a container port is published on, if a port mapping publishes it."""
    for mapping in mappings:
        if mapping.protocol == protocol and mapping.container_port == container_port and 0 < mapping.host_port <= MAX_PORT:
            return mapping.host_port
    return None


def port_mappings_of(task: Task) -> list[PortMapping]:
    """The task's port mappings: from its ContainerInfo, else from its newest status.

    dcos-net reads the UCR ones from the status when the TaskInfo does not carry them (pods).
    """
    if task.container and task.container.port_mappings:
        return list(task.container.port_mappings)
    for status in reversed(task.statuses):
        mappings = [m for info in status.network_infos for m in info.port_mappings]
        if mappings:
            return mappings
    return []


def port_at(task: Task, index: int) -> int | None:
    """The ``index``-th host port of the task's port resources, counted range by range.

    This is how ``VIP_PORT<n>`` counts (dcos-net expands the ranges and takes the n-th).
    """
    for ports in task.port_ranges:
        if index <= ports.end - ports.begin:
            return ports.begin + index
        index -= ports.end - ports.begin + 1
    return None


def _discovery_declarations(task: Task, reject) -> list[Declaration]:
    found = []
    mappings = port_mappings_of(task)
    for port in task.discovery.ports if task.discovery else []:
        for key, value in sorted(port.labels.items()):
            if not is_vip_key(key):
                continue
            scope = _scope(port)
            if port.protocol not in PROTOCOLS:
                # Mesos leaves the protocol optional; dcos-net ignores a port without tcp/udp.
                reject(key, value, f"discovery port {port.number} has protocol {port.protocol!r}, not tcp or udp")
            elif not 0 < port.number <= MAX_PORT:
                reject(key, value, f"discovery port number {port.number} is not a port")
            elif scope is None:
                reject(key, value, f"network-scope {port.labels['network-scope']!r} is neither container nor host")
            else:
                try:
                    address, named, vip_port = split_vip(value)
                except BadVip as bad:
                    reject(key, value, str(bad))
                    continue
                # §3.1.3: a port mapping that publishes this container port on the agent makes
                # dcos-net balance to agent IP:host port, exactly like network-scope host.
                host_port = port.number if scope == "host" else _host_port_of(mappings, port.protocol, port.number)
                found.append(
                    Declaration(
                        label=key,
                        value=value,
                        protocol=port.protocol,
                        address=address,
                        named=named,
                        vip_port=vip_port,
                        scope="host" if host_port else "container",
                        port=host_port or port.number,
                    )
                )
    return found


def _legacy_declarations(task: Task, reject) -> list[Declaration]:
    found = []
    for key, value in sorted(task.labels.items()):
        if not key.lower().startswith("vip_port"):
            continue
        match = _LEGACY_KEY.fullmatch(key)
        scheme = _LEGACY_VALUE.fullmatch(value)
        if not match:
            reject(key, value, "a legacy VIP label key is VIP_PORT<index>")
        elif not scheme:
            reject(key, value, "a legacy VIP label value starts with tcp:// or udp://")
        elif (host_port := port_at(task, int(match["index"]))) is None:
            count = sum(r.end - r.begin + 1 for r in task.port_ranges)
            reject(key, value, f"port index {int(match['index'])} but the task has {count} port(s)")
        else:
            try:
                address, named, vip_port = split_vip(scheme["vip"])
            except BadVip as bad:
                reject(key, value, str(bad))
                continue
            found.append(
                Declaration(
                    label=key,
                    value=value,
                    protocol=scheme["protocol"],
                    address=address,
                    named=named,
                    vip_port=vip_port,
                    scope="host",
                    port=host_port,
                )
            )
    return found


def declarations_of(task: Task) -> tuple[list[Declaration], list[Rejection]]:
    """Every readable VIP declaration of the task, and a rejection for every unreadable one."""
    rejections: list[Rejection] = []

    def reject(key: str, value: str, why: str) -> None:
        rejections.append(Rejection(task.id, key, value, why))

    declarations = _discovery_declarations(task, reject) + _legacy_declarations(task, reject)
    return declarations, rejections
