"""Which addresses a task's records carry (reference §1.4, §2.3). Pure.

Mesos-DNS (``<domain>`` records): the ordered ``ip_sources`` of ``DnsConfig``:

- ``host``: the agent's IP;
- ``netinfo``: every ``network_infos[].ip_addresses[]`` of the newest TASK_RUNNING status;
- ``mesos`` / ``docker`` (deprecated): the status label
  ``MesosContainerizer.NetworkSettings.IPAddress`` / ``Docker.NetworkSettings.IPAddress``
  of the newest TASK_RUNNING status;

merged either the DC/OS way (``dcos``: all sources in order, then the first IPv4 and the first
IPv6) or the upstream way (``first``: every address of the first source that has any).
So on DC/OS a Docker IPv6 task gets A = agent IP (``host`` comes first) and AAAA = its
container IPv6 (``netinfo``).

dcos-dns (``dcos.thisdcos.directory``): ``container_ips`` are the addresses of the newest
status that reports any (dcos-net keeps the last non-empty list), and ``has_port_mapping``
decides whether ``autoip`` is the agent or the container.

Addresses come back canonical and tagged with their record type: ``("10.0.0.5", "A")``.
Text that is not an IP address is skipped, as Mesos-DNS's ``net.ParseIP`` does.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from functools import lru_cache

from processors.dns.config import DnsConfig
from schemas.mesos import Agent, Task, TaskStatus

Address = tuple[str, str]  # (canonical IP, "A" or "AAAA")
Keep = Callable[[list[Address]], list[Address]]  # the container addresses that may be published

MESOS_IP_LABEL = "MesosContainerizer.NetworkSettings.IPAddress"
DOCKER_IP_LABEL = "Docker.NetworkSettings.IPAddress"
_PROTOCOLS = ("tcp", "udp")
_INDEX = re.compile(r"[+-]?[0-9]+")  # Erlang binary_to_integer: an optional sign, then digits


@lru_cache(maxsize=1 << 16)  # agent addresses repeat for every task on the agent
def address(text: str | None) -> Address | None:
    """The canonical address and its record type, or None when ``text`` is no IP.

    An IPv4-mapped IPv6 address is an IPv4 address, as Go's ``To4`` reads it.
    """
    if not text:
        return None
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (str(ip), "A") if ip.version == 4 else (str(ip), "AAAA")


def _addresses(texts) -> list[Address]:
    found: list[Address] = []
    for text in texts:
        parsed = address(text)
        if parsed is not None and parsed not in found:
            found.append(parsed)
    return found


def agent_addresses(agent: Agent) -> list[Address]:
    """The agent's address (its PID host, or its hostname when that is an IP)."""
    return _addresses([agent.ip])


def _newest_running(task: Task) -> TaskStatus | None:
    newest = None
    for status in task.statuses:
        if status.state == "TASK_RUNNING" and (newest is None or status.timestamp > newest.timestamp):
            newest = status
    return newest


def _source(source: str, task: Task, hosts: list[Address]) -> list[Address]:
    if source == "host":
        return hosts
    status = _newest_running(task)
    if status is None:
        return []
    if source == "netinfo":
        return _addresses(ip for info in status.network_infos for ip in info.ip_addresses)
    label = MESOS_IP_LABEL if source == "mesos" else DOCKER_IP_LABEL
    return _addresses(status.repeated_labels.get(label) or [status.labels.get(label)])


def task_addresses(task: Task, hosts: list[Address], config: DnsConfig, keep: Keep | None = None) -> list[Address]:
    """The addresses of ``<task>.<fw>.<domain>`` by the configured sources and merge rule.

    ``keep`` filters the container sources' addresses (not ``host``: the agent's); a source
    whose every address it drops still counts as reporting some, so ``first`` does not fall
    back to the next source (the agent) for a container the status placed elsewhere.
    """
    if config.ip_merge == "first":
        for source in config.ip_sources:
            found = _source(source, task, hosts)
            if found:
                return keep(found) if keep is not None and source != "host" else found
        return []
    first: dict[str, Address] = {}
    for source in config.ip_sources:
        reported = _source(source, task, hosts)
        for found in keep(reported) if keep is not None and source != "host" else reported:
            first.setdefault(found[1], found)
            if len(first) == 2:
                return [first["A"], first["AAAA"]]
    return list(first.values())


def container_ips(task: Task) -> list[Address]:
    """dcos-net's task IPs: those of the newest status reporting any (IPv4 and IPv6)."""
    for status in sorted(task.statuses, key=lambda s: s.timestamp, reverse=True):
        found = _addresses(ip for info in status.network_infos for ip in info.ip_addresses)
        if found:
            return found
    return []


def has_port_mapping(task: Task) -> bool:
    """Whether dcos-net sees a port with a host port: then ``autoip`` is the agent's IP.

    Host ports come from container port mappings (Docker, or UCR network port mappings; a
    pod's from its status), from legacy ``VIP_PORT<n>`` task labels (the n-th host port) and
    from DiscoveryInfo ports labelled ``network-scope: host``. Where dcos-net's port parsing
    fails as a whole (a ``VIP_PORT<n>`` past the task's ports, an unknown network scope) it
    keeps no ports, and so no port mapping.
    """
    mapped = False
    container = task.container
    mappings = list(container.port_mappings) if container else []
    if not mappings and (container is None or (container.type in (None, "MESOS") and not container.network_names)):
        for status in sorted(task.statuses, key=lambda s: s.timestamp, reverse=True):
            if status.network_infos:
                mappings = [m for info in status.network_infos for m in info.port_mappings]
                break
    if any(m.protocol.lower() in _PROTOCOLS for m in mappings):
        mapped = True
    host_ports = sum(r.end - r.begin + 1 for r in task.port_ranges)
    for key, value in task.labels.items():
        index = _vip_port_index(key, value)
        if index is None:
            continue
        if index >= host_ports:
            return False
        mapped = True
    for port in task.discovery.ports if task.discovery else []:
        if port.protocol.lower() not in _PROTOCOLS:
            continue
        scope = port.labels.get("network-scope")
        if scope == "host":
            mapped = True
        elif scope not in (None, "container"):
            return False
    return mapped


def _vip_port_index(key: str, value: str) -> int | None:
    """n of a legacy ``VIP_PORT<n>`` label whose value is ``tcp://...`` or ``udp://...``."""
    lowered = key.lower()
    if not lowered.startswith("vip_port") or not value.startswith(("tcp://", "udp://")):
        return None
    digits = lowered[len("vip_port") :]
    if not _INDEX.fullmatch(digits):
        return None
    index = int(digits)
    return index if index >= 0 else None
