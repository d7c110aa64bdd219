"""Conversions between the legacy `/state` JSON and the v1 operator-API JSON.

The model keeps every Mesos object in the v1 shape (ids wrapped in {"value": ...},
labels wrapped in {"labels": [...]}, resources as a list). Legacy documents are
converted once at load, and the legacy endpoints are rendered back from the v1
shape, so one representation feeds every API the simulator serves.
"""

from __future__ import annotations

import re
from typing import Any

from schemas.addresses import parse_pid

DEFAULT_AGENT_PORT = 5051


def wrap(value: str) -> dict[str, str]:
    return {"value": value}


def unwrap(value: Any) -> str:
    """Accept both {"value": "x"} (v1) and "x" (legacy)."""
    if isinstance(value, dict):
        return str(value.get("value", ""))
    return "" if value is None else str(value)


# -- resources --------------------------------------------------------------------

def parse_port_ranges(text: str) -> list[tuple[int, int]]:
    """'[1025-2180, 2182-3887]' -> [(1025, 2180), (2182, 3887)]."""
    ranges = []
    for begin, end in re.findall(r"(\d+)\s*-\s*(\d+)", text or ""):
        ranges.append((int(begin), int(end)))
    return ranges


def format_port_ranges(ranges: list[tuple[int, int]]) -> str:
    return "[" + ", ".join(f"{b}-{e}" for b, e in ranges) + "]"


def ports_to_ranges(ports: list[int]) -> list[tuple[int, int]]:
    """Merge single ports into contiguous ranges, as Mesos reports them."""
    ranges: list[tuple[int, int]] = []
    for port in sorted(set(ports)):
        if ranges and ranges[-1][1] + 1 == port:
            ranges[-1] = (ranges[-1][0], port)
        else:
            ranges.append((port, port))
    return ranges


def ranges_resource(ranges: list[tuple[int, int]], extra: dict | None = None) -> dict:
    resource = {
        "name": "ports",
        "type": "RANGES",
        "ranges": {"range": [{"begin": b, "end": e} for b, e in ranges]},
    }
    resource.update(extra or {})
    return resource


def scalar_resource(name: str, value: float, extra: dict | None = None) -> dict:
    resource = {"name": name, "type": "SCALAR", "scalar": {"value": float(value)}}
    resource.update(extra or {})
    return resource


def resources_from_legacy(resources: dict | None) -> list[dict]:
    """Legacy {"cpus": 1, "ports": "[1-2]"} -> v1 list of Resource."""
    result = []
    for name, value in (resources or {}).items():
        if name == "ports" and isinstance(value, str):
            ranges = parse_port_ranges(value)
            if ranges:
                result.append(ranges_resource(ranges))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            result.append(scalar_resource(name, value))
    return result


def resources_to_legacy(resources: list[dict] | None) -> dict[str, Any]:
    """v1 list of Resource -> legacy summed dict (ports as a range string)."""
    totals: dict[str, Any] = {name: 0.0 for name in ("cpus", "disk", "mem")}
    ports: list[tuple[int, int]] = []
    for resource in resources or []:
        name = resource.get("name")
        if resource.get("type") == "RANGES" and name == "ports":
            ports.extend((r["begin"], r["end"]) for r in resource.get("ranges", {}).get("range", []))
        elif "scalar" in resource and name:
            totals[name] = totals.get(name, 0.0) + resource["scalar"].get("value", 0.0)
    if ports:
        totals["ports"] = format_port_ranges(sorted(ports))
    return totals


def resource_ports(resources: list[dict] | None) -> list[int]:
    """Every single port named by the 'ports' resources."""
    ports = []
    for resource in resources or []:
        if resource.get("name") == "ports":
            for r in resource.get("ranges", {}).get("range", []):
                ports.extend(range(r["begin"], r["end"] + 1))
    return ports


def resource_port_ranges(resources: list[dict] | None) -> list[tuple[int, int]]:
    return [
        (r["begin"], r["end"])
        for resource in resources or []
        if resource.get("name") == "ports"
        for r in resource.get("ranges", {}).get("range", [])
    ]


# -- labels -----------------------------------------------------------------------

def labels_from_legacy(labels: Any) -> dict:
    """Legacy labels are a bare list; v1 wraps them. Empty labels become {}."""
    if isinstance(labels, dict):
        return labels
    if isinstance(labels, list) and labels:
        return {"labels": labels}
    return {}


def labels_to_legacy(labels: Any) -> list:
    if isinstance(labels, dict):
        return list(labels.get("labels", []))
    return list(labels or [])


def labels_as_dict(labels: Any) -> dict[str, str]:
    return {item.get("key", ""): item.get("value", "") for item in labels_to_legacy(labels)}


def normalize_network_infos(network_infos: list | None) -> list:
    """Mesos < 1.0 exported `ip_address` and list labels; v1 has neither."""
    result = []
    for info in network_infos or []:
        info = dict(info)
        if "ip_address" in info:
            legacy_ip = info.pop("ip_address")
            if not info.get("ip_addresses"):
                info["ip_addresses"] = [{"ip_address": legacy_ip}]
        if "labels" in info:
            info["labels"] = labels_from_legacy(info["labels"])
        result.append(info)
    return result


# -- tasks ------------------------------------------------------------------------

def status_from_legacy(status: dict, task_id: str, agent_id: str) -> dict:
    result = {"task_id": wrap(task_id), "state": status.get("state", "TASK_STAGING")}
    for key, value in status.items():
        if key in ("state",):
            continue
        if key == "labels":
            labels = labels_from_legacy(value)
            if labels:
                result["labels"] = labels
        elif key == "container_status":
            value = dict(value)
            if "network_infos" in value:
                value["network_infos"] = normalize_network_infos(value["network_infos"])
            result["container_status"] = value
        else:
            result[key] = value
    result.setdefault("agent_id", wrap(agent_id))
    return result


def task_from_legacy(task: dict) -> dict:
    task_id = unwrap(task.get("id"))
    agent_id = unwrap(task.get("slave_id"))
    result: dict[str, Any] = {
        "name": task.get("name", task_id),
        "task_id": wrap(task_id),
        "framework_id": wrap(unwrap(task.get("framework_id"))),
        "agent_id": wrap(agent_id),
        "state": task.get("state", "TASK_STAGING"),
        "resources": resources_from_legacy(task.get("resources")),
        "statuses": [status_from_legacy(s, task_id, agent_id) for s in task.get("statuses", [])],
    }
    if unwrap(task.get("executor_id")):
        result["executor_id"] = wrap(unwrap(task["executor_id"]))
    labels = labels_from_legacy(task.get("labels"))
    if labels:
        result["labels"] = labels
    for key in ("discovery", "health_check", "user", "kill_policy", "role"):
        if key in task:
            result[key] = task[key]
    if "container" in task:
        container = dict(task["container"])
        if "network_infos" in container:
            container["network_infos"] = normalize_network_infos(container["network_infos"])
        result["container"] = container
    return result


def status_to_legacy(status: dict) -> dict:
    result = {"state": status.get("state"), "timestamp": status.get("timestamp", 0.0)}
    if "labels" in status:
        result["labels"] = labels_to_legacy(status["labels"])
    for key in ("container_status", "healthy", "message", "reason", "source"):
        if key in status:
            result[key] = status[key]
    return result


def task_to_legacy(task: dict) -> dict:
    result: dict[str, Any] = {
        "id": unwrap(task["task_id"]),
        "name": task.get("name", ""),
        "framework_id": unwrap(task.get("framework_id")),
        "executor_id": unwrap(task.get("executor_id")),
        "slave_id": unwrap(task.get("agent_id")),
        "state": task.get("state"),
        "resources": resources_to_legacy(task.get("resources")),
        "statuses": [status_to_legacy(s) for s in task.get("statuses", [])],
    }
    if task.get("labels"):
        result["labels"] = labels_to_legacy(task["labels"])
    for key in ("discovery", "container", "health_check", "user", "role"):
        if key in task:
            result[key] = task[key]
    return result


# -- identities and times ---------------------------------------------------------

def pid_address(pid: str | None) -> tuple[str | None, int | None]:
    """'slave(1)@10.0.0.1:5051' -> ('10.0.0.1', 5051); 'master@[fd00::1]:5050' -> ('fd00::1', 5050)."""
    return parse_pid(pid) or (None, None)


def seconds_to_time(seconds: float | None) -> dict:
    return {"nanoseconds": int(round((seconds or 0.0) * 1e9))}


def time_to_seconds(value: Any) -> float:
    if isinstance(value, dict):
        return value.get("nanoseconds", 0) / 1e9
    return float(value or 0.0)
