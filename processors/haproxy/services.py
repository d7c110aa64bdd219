"""One logical app -> its HAProxy service records (pure; never raises).

A logical app is an app, or the apps of one blue/green deployment group
(``HAPROXY_DEPLOYMENT_GROUP``), merged into one app ``/<group>`` so backend names stay the
same across colours. ``services_of`` derives one ``Service`` per (LB group, service port):

- groups: ``HAPROXY_{n}_GROUP``, else ``HAPROXY_GROUP``, else ``NO_GROUP``;
- a port that is disabled (``HAPROXY_{n}_ENABLED`` false, or not true in strict mode) has no
  record; a port with a bad label is refused (a ``Rejection``), the app's other ports stay;
  a bad app-level label refuses the whole app;
- a port with no servers still has its record (``servers=[]``): which tasks run changes
  ``servers`` only, never which records exist.

Which tasks become servers: tasks in state RUNNING, and, as marathon-lb keeps them, LOST and
UNREACHABLE (an agent cut off by a partition may still serve; HAProxy's own checks decide).
Never STAGING, STARTING, KILLING or an ended state. A task without a host, or whose address
cannot be found (ports.py), is left out without a rejection. ``Server.healthy`` is None for
an app without Marathon health checks, else whether any of the task's results is alive.

Blue/green (marathon-lb's rule): members are merged oldest first
(``HAPROXY_DEPLOYMENT_STARTED_AT``; with ``HAPROXY_DEPLOYMENT_NEW_INSTANCES`` set on the
newer one, the app scaled more recently, ``versionInfo.lastScalingAt``, counts as new). The
old app is the base: its labels, ports and health checks. The first N old tasks by task id
drain, N = min(#old tasks, #healthy new tasks, max(0, #healthy new + old instances -
``HAPROXY_DEPLOYMENT_TARGET_INSTANCES`` of the new app)). A healthy new task is a serving
task whose health results are all alive (at least one); a new app without health checks
counts its instances. Unlike marathon-lb, only serving tasks count, and without a target
nothing drains. A plain app whose id equals ``/<group>`` keeps its id; the group's apps are
then refused.

Names (marathon-lb's): backend ``<app id without '/', '/' -> '_'>_<bind port>``; server
``<host>_<ip>_<port>`` (``<ip>_<port>`` when host is the ip) with every character but
letters, digits and '-' turned to '_'; server id sha256(name) mod 32767, never 0, re-hashed
with the digest appended on a collision within the backend, assigned in name order.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import msgspec

from processors.haproxy import labels as lb
from processors.haproxy.labels import AppLabels, PortLabels, Rejection
from processors.haproxy.ports import TaskAddress, service_ports, task_address
from processors.haproxy.values import Invalid, single_path
from schemas import marathon
from schemas.haproxy import NO_GROUP, HealthCheck, Server, Service, service_key
from schemas.marathon import App, AppTask

SERVING_STATES = frozenset({"RUNNING", "UNREACHABLE", "LOST"})
HTTP_PROTOCOLS = frozenset({"HTTP", "HTTPS", "MESOS_HTTP", "MESOS_HTTPS"})
TCP_PROTOCOLS = frozenset({"TCP", "MESOS_TCP"})
MAX_SERVER_ID = 32767
_NOT_NAME = re.compile(r"[^A-Za-z0-9-]")


@dataclass(frozen=True)
class Options:
    strict: bool = False  # marathon-lb's --strict-mode: a port needs HAPROXY_{n}_ENABLED=true


DEFAULTS = Options()


class Derived(NamedTuple):
    services: dict[str, Service]
    rejections: list[Rejection]
    notes: list[str]  # tasks left out, and why (not rejections: nothing is wrong with the app)


@dataclass
class Entry:
    """One serving task of a logical app, with the member app it belongs to."""

    task: AppTask
    app: App
    draining: bool = False


def logical_id(app: App) -> str:
    """The id the app publishes under: ``/<deployment group>`` or its own."""
    group = lb.deployment_group_of(app.labels)
    return f"/{group}" if group is not None else app.id


def is_serving(task: AppTask) -> bool:
    return task.state.upper().removeprefix("TASK_") in SERVING_STATES


def services_of(apps: Sequence[App], tasks: Iterable[AppTask], agent_ips: Mapping[str, str],
                options: Options = DEFAULTS) -> Derived:
    """The records of one logical app: `apps` share one ``logical_id``; `tasks` are theirs."""
    rejections: list[Rejection] = []
    notes: list[str] = []
    members: list[tuple[App, AppLabels]] = []
    for app in sorted(apps, key=lambda a: a.id):
        parsed, problems = lb.app_labels(app.id, app.labels)
        rejections.extend(problems)
        if parsed is not None:
            members.append((app, parsed))
    plain = [m for m in members if m[1].deployment is None]
    if plain and len(members) > 1:
        for app, _ in members:
            if app is not plain[0][0]:
                rejections.append(Rejection(app.id, -1, "HAPROXY_DEPLOYMENT_GROUP", app.labels.get("HAPROXY_DEPLOYMENT_GROUP", ""),
                                            f"the deployment group would publish as {plain[0][0].id}, "
                                            f"the id of another app"))
        members = plain[:1]
    if not members:
        return Derived({}, sorted(rejections), notes)
    tasks_of: dict[str, list[AppTask]] = {}
    for task in sorted(tasks, key=lambda t: t.id):
        if is_serving(task):
            tasks_of.setdefault(task.app_id, []).append(task)
    base, base_labels, entries = _merged(members, tasks_of)
    services = _services(logical_id(base) if base_labels.deployment else base.id, base, base_labels,
                         entries, agent_ips, options, rejections, notes)
    return Derived(services, sorted(rejections), notes)


# -- blue/green --------------------------------------------------------------------------
def _merged(members: list[tuple[App, AppLabels]], tasks_of: dict[str, list[AppTask]]) -> tuple[App, AppLabels, list[Entry]]:
    ordered = sorted(members, key=lambda m: (_started(m[1]), m[0].id))
    base, base_labels = ordered[0]
    entries = [Entry(task, base) for task in tasks_of.get(base.id, ())]
    for app, app_labels in ordered[1:]:
        old = (base, base_labels, entries)
        new = (app, app_labels, [Entry(task, app) for task in tasks_of.get(app.id, ())])
        if _scaled_later(old[0], new[0], new[1]):
            old, new = new, old
        _drain(old, new)
        base, base_labels = old[0], old[1]
        entries = old[2] + new[2]
    return base, base_labels, entries


def _started(parsed: AppLabels) -> datetime:
    deployment = parsed.deployment
    return deployment.started_at if deployment is not None and deployment.started_at is not None else datetime.min


def _scaled_later(old: App, new: App, new_labels: AppLabels) -> bool:
    """A traffic split (NEW_INSTANCES on the newer app): the app scaled last is the new one."""
    if new_labels.deployment is None or not new_labels.deployment.new_instances:
        return False
    return bool(old.last_scaling_at and new.last_scaling_at and old.last_scaling_at > new.last_scaling_at)


def _drain(old: tuple[App, AppLabels, list[Entry]], new: tuple[App, AppLabels, list[Entry]]) -> None:
    new_app, new_labels, new_entries = new
    target = new_labels.deployment.target_instances if new_labels.deployment else None
    if target is None:
        return
    if new_app.health_checks:
        healthy = sum(1 for e in new_entries if e.task.health_check_results
                      and all(r.alive for r in e.task.health_check_results))
    else:
        healthy = new_app.instances
    old_entries = sorted(old[2], key=lambda e: e.task.id)
    count = min(len(old_entries), healthy, max(0, healthy + old[0].instances - target))
    for entry in old_entries[:count]:
        entry.draining = True


# -- one port ----------------------------------------------------------------------------
def _services(app_id: str, base: App, app_labels: AppLabels, entries: list[Entry], agent_ips: Mapping[str, str],
              options: Options, rejections: list[Rejection], notes: list[str]) -> dict[str, Service]:
    ports = service_ports(base)
    per_port = lb.labels_by_port(base.labels)
    addresses: dict[str, TaskAddress] = {}
    for entry in entries:
        address = task_address(entry.app, entry.task, agent_ips)
        if isinstance(address, str):
            notes.append(f"task {entry.task.id}: {address}")
        else:
            addresses[entry.task.id] = address
    services: dict[str, Service] = {}
    bound: dict[int, int] = {}  # bind port -> the index that took it
    for index, service_port in enumerate(ports):
        settings, problems = lb.port_labels(base.id, index, per_port.get(index, {}), len(ports))
        if settings is None:
            rejections.extend(problems)
            continue
        if not (settings.enabled if settings.enabled is not None else not options.strict):
            continue
        service = _service(app_id, base, index, service_port, settings, entries, addresses, rejections)
        if service is None:
            continue
        if service.bind_port in bound:
            rejections.append(Rejection(base.id, index, f"HAPROXY_{index}_PORT", str(service.bind_port),
                                        f"port {service.bind_port} is already bound by port index "
                                        f"{bound[service.bind_port]} of this app"))
            continue
        bound[service.bind_port] = index
        for group in (settings.groups if settings.groups is not None else app_labels.groups) or (NO_GROUP,):
            services[service_key(group, app_id, service.service_port)] = msgspec.structs.replace(service, group=group)
    return services


def _service(app_id: str, base: App, index: int, service_port: int | None, settings: PortLabels, entries: list[Entry],
             addresses: dict[str, TaskAddress], rejections: list[Rejection]) -> Service | None:
    def refuse(label: str, value: str, why: str) -> None:
        rejections.append(Rejection(base.id, index, label, value[:200], why))

    service_port = service_port or settings.port
    if service_port is None:
        refuse("", "", "the port has no service port (Marathon assigns one to a running app, but not to an "
                       "IP-per-task app before Marathon 1.5): set HAPROXY_{n}_PORT".replace("{n}", str(index)))
        return None
    check_index = settings.healthcheck_port_index if settings.healthcheck_port_index is not None else index
    check = marathon_check(base, check_index)
    mode = settings.mode or ("http" if settings.vhosts or _forces_http(check, settings) else "tcp")
    if mode == "tcp" and settings.vhosts:
        refuse(f"HAPROXY_{index}_MODE", "tcp", "a port with HAPROXY_{n}_VHOST is routed by the HTTP frontends "
               "and needs mode http".replace("{n}", str(index)))
        return None
    if mode == "tcp" and settings.http_only_label is not None:
        refuse(settings.http_only_label, "", "http-request, http-response and http options need mode http "
               "(the port is tcp)")
        return None
    health_check = haproxy_check(check, mode) if check is not None else None
    if isinstance(health_check, str):
        refuse("", "", f"Marathon health check {check_index}: {health_check}")
        return None
    bind_port = settings.port or service_port
    servers = servers_of(entries, addresses, index, settings.healthcheck_port_index)
    return Service(
        group=NO_GROUP, app_id=app_id, service_port=service_port, backend=backend_name(app_id, bind_port),
        bind_port=bind_port, mode=mode, servers=servers, bind_addr=settings.bind_addr,
        bind_options=settings.bind_options, balance=settings.balance, vhosts=list(settings.vhosts),
        path=settings.path, weight=settings.weight, sticky=settings.sticky,
        redirect_to_https=settings.redirect_to_https, use_hsts=settings.use_hsts, auth=settings.auth,
        ssl_cert=settings.ssl_cert, network_allowed=list(settings.network_allowed), health_check=health_check,
        proxypass_path=settings.proxypass_path, revproxy_path=settings.revproxy_path,
        redirect_path=settings.redirect_path, frontend_options=list(settings.frontend_options),
        backend_options=list(settings.backend_options),
    )


# -- health checks -----------------------------------------------------------------------
def marathon_check(app: App, index: int) -> marathon.HealthCheck | None:
    """marathon-lb's pick: the first check with an explicit port (it then serves every
    index) or with ``portIndex`` == index."""
    for check in app.health_checks:
        if check.port or check.port_index == index:
            return check
    return None


def _forces_http(check: marathon.HealthCheck | None, settings: PortLabels) -> bool:
    # marathon-lb: only protocol HTTP makes a port http, except through
    # BACKEND_HEALTHCHECK_PORT_INDEX, where any HTTP flavour does.
    if check is None:
        return False
    if settings.healthcheck_port_index is not None:
        return check.protocol.upper() in HTTP_PROTOCOLS
    return check.protocol.upper() == "HTTP"


def haproxy_check(check: marathon.HealthCheck, mode: str) -> HealthCheck | str:
    """HAProxy's check for a Marathon check: tcp in tcp mode or for TCP/MESOS_TCP, else http
    (COMMAND checks too, on '/'); ``fall`` is max failures + 1. Or why it cannot be used."""
    if not 1 <= check.interval_seconds <= 86400:
        return "intervalSeconds is not from 1 to 86400"
    if not 0 <= check.timeout_seconds <= 86400:
        return "timeoutSeconds is not from 0 to 86400"
    if not 0 <= check.max_consecutive_failures <= 100_000:
        return "maxConsecutiveFailures is not from 0 to 100000"
    if check.port is not None and not 1 <= check.port <= 65535:
        return "port is not from 1 to 65535"
    kind = "tcp" if mode == "tcp" or check.protocol.upper() in TCP_PROTOCOLS else "http"
    path = None
    if kind == "http":
        path = "/" if check.protocol.upper() == "COMMAND" or not check.path else check.path
        if isinstance(single_path(path), Invalid):
            return f"path {path[:80]!r} is not a path: '/' then letters, digits and ._~!$&()*+,;=:@/%-"
    return HealthCheck(kind=kind, interval_s=check.interval_seconds, timeout_s=check.timeout_seconds,
                       fall=check.max_consecutive_failures + 1, path=path, port=check.port)


# -- servers -----------------------------------------------------------------------------
def servers_of(entries: list[Entry], addresses: dict[str, TaskAddress], index: int,
               check_index: int | None) -> list[Server]:
    """The servers of port `index`, sorted by name, one per name (the first task by id)."""
    found: dict[str, Server] = {}
    for entry in entries:
        address = addresses.get(entry.task.id)
        if address is None or index >= len(address.ports) or address.ports[index] is None:
            continue
        port = address.ports[index]
        name = server_name(address.host, address.ip, port)
        if name in found and found[name].task_id < entry.task.id:
            continue
        check_port = address.ports[check_index] if check_index is not None and check_index < len(address.ports) else None
        healthy = any(r.alive for r in entry.task.health_check_results) if entry.app.health_checks else None
        found[name] = Server(name=name, id=0, ip=address.ip, port=port, task_id=entry.task.id,
                             draining=entry.draining, healthy=healthy, check_port=check_port)
    servers = [found[name] for name in sorted(found)]
    ids = server_ids([server.name for server in servers])
    return [msgspec.structs.replace(server, id=server_id) for server, server_id in zip(servers, ids)]


def server_name(host: str, ip: str, port: int) -> str:
    return _NOT_NAME.sub("_", f"{ip}_{port}" if host == ip else f"{host}_{ip}_{port}")


def backend_name(app_id: str, bind_port: int) -> str:
    return f"{app_id.lstrip('/').replace('/', '_')}_{bind_port}"


def server_ids(names: list[str]) -> list[int]:
    """marathon-lb's stable ids: sha256(name) mod 32767, never 0; a collision re-hashes the
    name with the digest appended (bounded: 32767 ids cannot all be taken by one backend's
    names, but the loop stops anyway)."""
    taken: set[int] = set()
    ids = []
    for name in names:
        digest = hashlib.sha256(name.encode()).hexdigest()
        server_id = int(digest, 16) % MAX_SERVER_ID
        for _ in range(1000):
            if server_id != 0 and server_id not in taken:
                break
            digest = hashlib.sha256((name + digest).encode()).hexdigest()
            server_id = int(digest, 16) % MAX_SERVER_ID
        taken.add(server_id)
        ids.append(server_id)
    return ids
