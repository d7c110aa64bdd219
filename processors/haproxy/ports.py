"""Service ports and task addresses, as marathon-lb resolves them (pure).

The networking mode of an app is the mode of its last network (the producer already turned
Marathon's older ``container.docker.network`` and ``ipAddress`` into networks), ``host``
without one.

Service ports (the ports an LB binds), one per port index:
- bridge and container apps: ``portMappings[].servicePort``, or, without port mappings,
- ``portDefinitions[].port``.
A port Marathon left unassigned (0 or none: an app definition, or an IP-per-task app of
Marathon <= 1.4) stays at its index as None. marathon-lb drops it, shifting every later
index, and hashes IP-per-task apps onto ports 10050-10100 that move when other apps change;
Wayfinder keeps the indices and takes ``HAPROXY_{n}_PORT`` as the service port instead
(services.py refuses a port with neither).

Task address, per mode:
- host: the agent's IP + the task's ports (falling back to the app's port definitions);
- bridge: the agent's IP + the task's host ports (falling back to the port definitions,
  then the container ports);
- container (IP-per-task): the task's first IP + the container ports
  (``ipAddress.discovery.ports``, else ``portMappings[].containerPort``).
The agent's IP is the one the agents table knows, else the task's ``host`` when that is an
IP literal. A host name is not resolved (marathon-lb resolves it with DNS; a processor does
no I/O), so such a task is left out. Task ports are zipped with service ports by index.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.addresses import canonical_ip
from schemas.marathon import App, AppTask

HOST = "host"
BRIDGE = "container/bridge"
CONTAINER = "container"


@dataclass(frozen=True)
class TaskAddress:
    """Where a task serves: ``host`` names it (server names), ``ip`` is dialed, ``ports``
    by port index (None where the task has no usable port at that index)."""

    host: str
    ip: str
    ports: tuple[int | None, ...]


def network_mode(app: App) -> str:
    mode = app.networks[-1].mode if app.networks else HOST
    return mode if mode in (BRIDGE, CONTAINER) else HOST


def _port(number: int | None) -> int | None:
    return number if number is not None and 1 <= number <= 65535 else None


def service_ports(app: App) -> list[int | None]:
    """The app's service port per index; None where Marathon assigned none."""
    if network_mode(app) in (BRIDGE, CONTAINER) and app.port_mappings:
        return [_port(mapping.service_port) for mapping in app.port_mappings]
    return [_port(definition.port) for definition in app.port_definitions]


def task_ports(app: App, task: AppTask) -> tuple[int | None, ...]:
    mode = network_mode(app)
    if mode == CONTAINER:
        ports = app.discovery_ports or [mapping.container_port for mapping in app.port_mappings]
    else:
        ports = task.ports or [definition.port for definition in app.port_definitions]
        if not ports and mode == BRIDGE:
            ports = [mapping.container_port for mapping in app.port_mappings]
    return tuple(_port(port) for port in ports)


def task_address(app: App, task: AppTask, agent_ips: dict[str, str]) -> TaskAddress | str:
    """Where `task` serves, or why it cannot be reached (a note, not a rejection)."""
    if not task.host:
        return "the task names no host"
    if network_mode(app) == CONTAINER:
        ip = canonical_ip(task.ip_addresses[0]) if task.ip_addresses else None
        if ip is None:
            return "an IP-per-task task without an IP address"
    else:
        ip = agent_ips.get(task.agent_id or "") or canonical_ip(task.host)
        if ip is None:
            return f"agent {task.agent_id} is unknown and the host name {task.host!r} is not resolved here"
    return TaskAddress(task.host, ip, task_ports(app, task))
