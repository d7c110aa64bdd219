"""Mesos JSON -> Wayfinder entities. Pure.

Mesos speaks two shapes: the v1 operator API (``task_id: {"value": ...}``, labels as
``{"labels": [...]}``, resources as a list) and the legacy ``/master/state`` document
(``id``, ``slave_id``, labels as a list, resources as a dict with a ports range string).
Every reader here accepts both, so the producer can subscribe or poll with one normaliser.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

import msgspec
import orjson

from producers.problems import InputRejected, Problems
from schemas.addresses import canonical_ip, parse_host_port, parse_pid
from schemas.mesos import (
    Agent,
    Container,
    Discovery,
    DiscoveryPort,
    Framework,
    Master,
    NetworkInfo,
    PortMapping,
    PortRange,
    Task,
    TaskStatus,
)


_RANGE = re.compile(r"(\d+)-(\d+)")


def value_of(field: object) -> str | None:
    """``{"value": x}`` (v1) or ``x`` (legacy) -> x."""
    if isinstance(field, dict):
        field = field.get("value")
    return field if isinstance(field, str) else None


def labels_of(raw: object, owner: str, problems: Problems) -> dict[str, str]:
    """Labels from ``{"labels": [...]}`` or ``[...]``; unparseable entries are reported and dropped."""
    if raw is None:
        return {}
    entries = raw.get("labels", []) if isinstance(raw, dict) else raw
    if not isinstance(entries, list):
        problems.add("labels", f"{owner}: labels must be a list of key/value pairs", raw)
        return {}
    labels: dict[str, str] = {}
    for entry in entries:
        key = entry.get("key") if isinstance(entry, dict) else None
        value = entry.get("value", "") if isinstance(entry, dict) else None
        if not isinstance(key, str) or not key or not isinstance(value, str):
            problems.add("labels", f"{owner}: label without a string key and value", entry)
            continue
        labels[key] = value
    return labels


def repeated_labels_of(raw: object) -> dict[str, list[str]]:
    """Every value, in order, of each label key that appears more than once. ``labels_of``
    keeps the last; Mesos-DNS reads every value of an IP label (and reports bad entries)."""
    entries = raw.get("labels", []) if isinstance(raw, dict) else raw
    values: dict[str, list[str]] = {}
    for entry in entries if isinstance(entries, list) else []:
        key = entry.get("key") if isinstance(entry, dict) else None
        value = entry.get("value", "") if isinstance(entry, dict) else None
        if isinstance(key, str) and key and isinstance(value, str):
            values.setdefault(key, []).append(value)
    return {key: found for key, found in values.items() if len(found) > 1}


def port_ranges_of(resources: object) -> list[PortRange]:
    """Port ranges from a v1 resource list or a legacy ``"[31000-31001, 31005-31005]"`` string."""
    if isinstance(resources, dict):
        text = resources.get("ports")
        return [PortRange(int(b), int(e)) for b, e in _RANGE.findall(text)] if isinstance(text, str) else []
    ranges = []
    for resource in resources if isinstance(resources, list) else []:
        if isinstance(resource, dict) and resource.get("name") == "ports":
            for item in (resource.get("ranges") or {}).get("range", []):
                ranges.append(PortRange(int(item["begin"]), int(item["end"])))
    return list(dict.fromkeys(ranges))  # Mesos order: VIP_PORT<n> labels index the ports in it


def _port_mappings(raw: object) -> list[PortMapping]:
    mappings = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict) and "container_port" in item:
            mappings.append(
                PortMapping(
                    host_port=int(item.get("host_port", 0)),
                    container_port=int(item["container_port"]),
                    protocol=str(item.get("protocol", "tcp")).lower(),
                )
            )
    return mappings


def _network_info(raw: dict) -> NetworkInfo:
    addresses = [
        entry["ip_address"]
        for entry in raw.get("ip_addresses") or []
        if isinstance(entry, dict) and isinstance(entry.get("ip_address"), str)
    ]
    if not addresses and isinstance(raw.get("ip_address"), str):  # Mesos 0.25 single address
        addresses = [raw["ip_address"]]
    return NetworkInfo(
        name=raw.get("name"), ip_addresses=addresses, port_mappings=_port_mappings(raw.get("port_mappings"))
    )


def status_of(raw: dict, task_id: str, problems: Problems) -> TaskStatus:
    container_status = raw.get("container_status") or {}
    healthy = raw.get("healthy")
    return TaskStatus(
        state=raw["state"],
        timestamp=float(raw.get("timestamp", 0.0)),
        healthy=healthy if isinstance(healthy, bool) else None,
        network_infos=[_network_info(n) for n in container_status.get("network_infos") or [] if isinstance(n, dict)],
        labels=labels_of(raw.get("labels"), f"status of task {task_id}", problems),
        repeated_labels=repeated_labels_of(raw.get("labels")),
    )


def merge_status(statuses: list[TaskStatus], status: TaskStatus) -> list[TaskStatus]:
    """Keep the newest status of each state, oldest first (bounded, and enough for IP sources)."""
    newest = {s.state: s for s in statuses}
    if status.state not in newest or newest[status.state].timestamp <= status.timestamp:
        newest[status.state] = status
    return sorted(newest.values(), key=lambda s: (s.timestamp, s.state))


def _discovery(raw: object, task_id: str, problems: Problems) -> Discovery | None:
    if not isinstance(raw, dict):
        return None
    ports = []
    holder = raw.get("ports") or {}
    listed = holder.get("ports", []) if isinstance(holder, dict) else None
    if not isinstance(listed, list):
        raise InputRejected("task", f"task {task_id}: discovery.ports must be an object with a ports list", raw)
    for port in listed:
        if not isinstance(port, dict) or not isinstance(port.get("number"), int):
            problems.add("discovery-port", f"task {task_id}: discovery port without a number", port)
            continue
        ports.append(
            DiscoveryPort(
                number=port["number"],
                protocol=str(port.get("protocol", "")).lower(),
                name=port.get("name"),
                labels=labels_of(port.get("labels"), f"discovery port {port['number']} of task {task_id}", problems),
            )
        )
    return Discovery(
        visibility=raw.get("visibility", "FRAMEWORK"),
        name=raw.get("name"),
        ports=ports,
        labels=labels_of(raw.get("labels"), f"discovery of task {task_id}", problems),
    )


def _container(raw: object) -> Container | None:
    if not isinstance(raw, dict):
        return None
    docker = raw.get("docker") or {}
    networks = [n for n in raw.get("network_infos") or [] if isinstance(n, dict)]
    mappings = _port_mappings(docker.get("port_mappings"))
    for network in networks:
        mappings += _port_mappings(network.get("port_mappings"))
    return Container(
        type=raw.get("type"),
        docker_network=docker.get("network"),
        port_mappings=mappings,
        network_names=[n["name"] for n in networks if isinstance(n.get("name"), str)],
    )


def task_of(raw: object, problems: Problems, framework_id: str | None = None) -> Task:
    """A Task from a v1 ``Task`` or a legacy state task (``framework_id``: the framework it is
    listed under). Raises InputRejected if it has no identity."""
    if not isinstance(raw, dict):
        raise InputRejected("task", "a task must be a JSON object", raw)
    task_id = value_of(raw.get("task_id")) or value_of(raw.get("id"))
    agent_id = value_of(raw.get("agent_id")) or value_of(raw.get("slave_id"))
    own = value_of(raw.get("framework_id"))
    if framework_id and own and own != framework_id:
        # A legacy state lists each task under its framework; Mesos-DNS goes by that nesting.
        problems.add("task", f"task {task_id}: its framework_id {own!r} is not the framework {framework_id!r} "
                             "it is listed under; the listing is followed", raw)
    framework_id = framework_id or own
    state = raw.get("state")
    if not (task_id and agent_id and framework_id and isinstance(state, str)):
        raise InputRejected("task", "a task needs an id, an agent id, a framework id and a state", raw)
    if "/" in framework_id:
        # Mesos refuses '/' in ids; the tasks topic key <framework id>/<task id> relies on it.
        raise InputRejected("task", f"task {task_id}: framework id {framework_id!r} contains '/'", raw)
    statuses: list[TaskStatus] = []
    for status in raw.get("statuses") or []:
        if isinstance(status, dict) and isinstance(status.get("state"), str):
            statuses = merge_status(statuses, status_of(status, task_id, problems))
    return Task(
        id=task_id,
        name=raw.get("name") or task_id,
        framework_id=framework_id,
        agent_id=agent_id,
        state=state,
        statuses=statuses,
        healthy=statuses[-1].healthy if statuses else None,
        health_check=isinstance(raw.get("health_check"), dict),
        labels=labels_of(raw.get("labels"), f"task {task_id}", problems),
        discovery=_discovery(raw.get("discovery"), task_id, problems),
        port_ranges=port_ranges_of(raw.get("resources")),
        container=_container(raw.get("container")),
    )


def with_status(task: Task, raw_status: dict, state: str | None, problems: Problems) -> Task:
    """The task after a TASK_UPDATED event; ``state`` is the event's latest state.

    A status without a health result (TASK_KILLING, say) keeps the last known health.
    """
    status = status_of(raw_status, task.id, problems)
    statuses = merge_status(task.statuses, status)
    healthy = status.healthy if status.healthy is not None else task.healthy
    return msgspec.structs.replace(task, state=state or status.state, statuses=statuses, healthy=healthy)


def agent_of(raw: object) -> Agent:
    """An Agent from a v1 ``Agent`` (``agent_info`` inside) or a legacy ``slaves[]`` entry."""
    if not isinstance(raw, dict):
        raise InputRejected("agent", "an agent must be a JSON object", raw)
    info = _info(raw, "agent_info")
    agent_id = value_of(info.get("id"))
    hostname = info.get("hostname")
    if not agent_id or not isinstance(hostname, str):
        raise InputRejected("agent", "an agent needs an id and a hostname", raw)
    ip, port = _address(raw, hostname)
    return Agent(
        id=agent_id,
        hostname=hostname,
        ip=ip,
        port=port or int(info.get("port", 5051)),
        active=bool(raw.get("active", True)),
        port_ranges=port_ranges_of(info.get("resources")),
        attributes=_attributes(info.get("attributes")),
    )


def _info(raw: dict, key: str) -> dict:
    """The ``agent_info``/``framework_info`` of a v1 object; a legacy entry is its own info."""
    return raw[key] if isinstance(raw.get(key), dict) else raw


def _address(raw: dict, hostname: object) -> tuple[str | None, int | None]:
    """(ip, port) from the libprocess PID (legacy state only), else the hostname if it is an IP."""
    pid = parse_pid(raw.get("pid"))
    return (canonical_ip(pid[0]), pid[1]) if pid else (canonical_ip(hostname), None)


def _attributes(raw: object) -> dict[str, str]:
    if isinstance(raw, dict):  # legacy: {"rack": "r1"}
        return {str(k): str(v) for k, v in raw.items()}
    attributes = {}
    for item in raw if isinstance(raw, list) else []:  # v1: [{"name", "type", "text": {"value"}}]
        if isinstance(item, dict) and "name" in item:
            value = item.get("text") or item.get("scalar") or {}
            attributes[item["name"]] = str(value.get("value", ""))
    return attributes


def framework_of(raw: object) -> Framework:
    """A Framework from a v1 ``Framework`` (``framework_info`` inside) or a legacy entry."""
    if not isinstance(raw, dict):
        raise InputRejected("framework", "a framework must be a JSON object", raw)
    info = _info(raw, "framework_info")
    framework_id = value_of(info.get("id"))
    name = info.get("name")
    if not framework_id or not isinstance(name, str):
        raise InputRejected("framework", "a framework needs an id and a name", raw)
    hostname = info.get("hostname")
    ip, port = _address(raw, hostname)
    return Framework(
        id=framework_id,
        name=name,
        hostname=hostname,
        ip=ip,
        port=port,
        active=bool(raw.get("active", True)),
        webui_url=info.get("webui_url") or None,
    )


def framework_endpoints_of(body: bytes) -> dict[str, tuple[str | None, int]]:
    """Framework id -> (scheduler IP or None, port) from the libprocess PIDs of a legacy
    ``/master/frameworks`` (or ``/master/state``) document: the operator API carries no PIDs,
    and Mesos-DNS's ``_framework._tcp.<fw>.mesos`` needs the port. Frameworks without a PID
    (HTTP API schedulers) are left out. Raises InputRejected for a document it cannot read."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InputRejected("master-frameworks", f"malformed JSON: {error}", body[:200]) from None
    if not isinstance(doc, dict):
        raise InputRejected("master-frameworks", "the document must be a JSON object", body[:200])
    endpoints: dict[str, tuple[str | None, int]] = {}
    for framework in doc.get("frameworks") if isinstance(doc.get("frameworks"), list) else []:
        if not isinstance(framework, dict):
            continue
        framework_id, pid = value_of(framework.get("id")), parse_pid(framework.get("pid"))
        if framework_id and pid:
            endpoints[framework_id] = (canonical_ip(pid[0]), pid[1])
    return endpoints


def with_endpoint(framework: Framework, endpoints: Mapping[str, tuple[str | None, int]]) -> Framework:
    """The framework with the scheduler address a legacy endpoint gave, where it has none."""
    found = endpoints.get(framework.id)
    if found is None or framework.port is not None:
        return framework
    ip, port = found
    return msgspec.structs.replace(framework, ip=framework.ip or ip, port=port)


def master_of_info(info: object) -> Master:
    """The master as it advertises itself in a v1 ``MasterInfo`` (``GET_MASTER``): the
    ``address`` (hostname, ip, port) where it has one, else its PID, else the packed IPv4
    ``ip`` with ``port``. Mesos-DNS names the leader by this address, never by the URL a
    client happened to reach it through. Raises InputRejected when it gives no address."""
    if not isinstance(info, dict):
        raise InputRejected("master", "GET_MASTER gave no master_info object", info)
    address = info.get("address") if isinstance(info.get("address"), dict) else {}
    pid = parse_pid(info.get("pid"))
    ip = canonical_ip(address.get("ip")) or (canonical_ip(pid[0]) if pid else None) or _packed_ipv4(info.get("ip"))
    port = next((p for p in (address.get("port"), info.get("port"), pid[1] if pid else None)
                 if isinstance(p, int) and not isinstance(p, bool) and 0 < p <= 65535), None)
    hostname = next((h for h in (address.get("hostname"), info.get("hostname")) if isinstance(h, str) and h), ip)
    if hostname is None or port is None:
        raise InputRejected("master", "GET_MASTER's master_info has no address, PID or IP and port", info)
    return Master(hostname=hostname, ip=ip or canonical_ip(hostname), port=port)


def _packed_ipv4(value: object) -> str | None:
    """MasterInfo's ``ip``: an IPv4 address packed into a uint32, in network byte order as
    the host reads it (little-endian): 3875667978 is 10.0.2.231."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 1 << 32:
        return None
    return str(ipaddress.IPv4Address(value.to_bytes(4, "little")))


def master_of(host_port: str) -> Master:
    """``10.0.0.1:5050``, ``[fd00::1]:5050`` or ``master@10.0.0.1:5050`` -> Master."""
    pid = parse_pid(host_port) if "@" in host_port else parse_host_port(host_port)
    if not pid:
        raise InputRejected("master", f"expected HOST:PORT or [IPv6]:PORT, got {host_port!r}", host_port)
    return Master(hostname=pid[0], ip=canonical_ip(pid[0]), port=pid[1])
