"""Legacy <-> v1 conversions of agents and frameworks (see convert.py for tasks)."""

from __future__ import annotations

from typing import Any

from simulator.convert import (DEFAULT_AGENT_PORT, pid_address, resources_from_legacy,
                               resources_to_legacy, seconds_to_time, task_to_legacy,
                               time_to_seconds, unwrap, wrap)


# -- agents -----------------------------------------------------------------------

def attributes_from_legacy(attributes: dict | None) -> list[dict]:
    result = []
    for name, value in (attributes or {}).items():
        if isinstance(value, (int, float)):
            result.append({"name": name, "type": "SCALAR", "scalar": {"value": float(value)}})
        else:
            result.append({"name": name, "type": "TEXT", "text": {"value": str(value)}})
    return result


def attributes_to_legacy(attributes: list[dict] | None) -> dict:
    result: dict[str, Any] = {}
    for attribute in attributes or []:
        if "scalar" in attribute:
            result[attribute["name"]] = attribute["scalar"].get("value")
        elif "text" in attribute:
            result[attribute["name"]] = attribute["text"].get("value")
    return result


def agent_from_legacy(slave: dict) -> dict:
    """A legacy master `slaves[]` entry (or an agent's own /state) -> v1 Agent."""
    _, port = pid_address(slave.get("pid"))
    resources = resources_from_legacy(slave.get("resources"))
    agent_info: dict[str, Any] = {
        "hostname": slave.get("hostname", ""),
        "port": port or DEFAULT_AGENT_PORT,
        "resources": resources,
        "id": wrap(unwrap(slave.get("id"))),
    }
    if slave.get("attributes"):
        agent_info["attributes"] = attributes_from_legacy(slave["attributes"])
    agent: dict[str, Any] = {
        "agent_info": agent_info,
        "active": slave.get("active", True),
        "pid": slave.get("pid") or f"slave(1)@{agent_info['hostname']}:{agent_info['port']}",
        "registered_time": seconds_to_time(slave.get("registered_time")),
        "total_resources": [dict(r, role="*") for r in resources],
    }
    if "version" in slave:
        agent["version"] = slave["version"]
    if slave.get("reregistered_time"):
        agent["reregistered_time"] = seconds_to_time(slave["reregistered_time"])
    return agent


def agent_to_legacy(agent: dict, used: dict) -> dict:
    info = agent["agent_info"]
    result = {
        "id": unwrap(info["id"]),
        "pid": agent.get("pid"),
        "hostname": info.get("hostname"),
        "port": info.get("port", DEFAULT_AGENT_PORT),
        "registered_time": time_to_seconds(agent.get("registered_time")),
        "resources": resources_to_legacy(info.get("resources")),
        "used_resources": used,
        "offered_resources": {"cpus": 0.0, "disk": 0.0, "mem": 0.0},
        "reserved_resources": {},
        "unreserved_resources": resources_to_legacy(info.get("resources")),
        "attributes": attributes_to_legacy(info.get("attributes")),
        "active": agent.get("active", True),
        "version": agent.get("version", ""),
    }
    if "reregistered_time" in agent:
        result["reregistered_time"] = time_to_seconds(agent["reregistered_time"])
    return result


def agent_info_to_legacy(info: dict) -> dict:
    """A recovered agent (AgentInfo only) in the legacy `recovered_slaves` shape."""
    return {
        "id": unwrap(info["id"]),
        "hostname": info.get("hostname"),
        "port": info.get("port", DEFAULT_AGENT_PORT),
        "resources": resources_to_legacy(info.get("resources")),
        "attributes": attributes_to_legacy(info.get("attributes")),
    }


# -- frameworks -------------------------------------------------------------------

FRAMEWORK_INFO_KEYS = ("user", "name", "failover_timeout", "checkpoint", "role", "roles",
                       "hostname", "principal", "webui_url")


def framework_from_legacy(framework: dict) -> dict:
    info: dict[str, Any] = {"id": wrap(unwrap(framework.get("id")))}
    for key in FRAMEWORK_INFO_KEYS:
        if key in framework:
            info[key] = framework[key]
    capabilities = framework.get("capabilities") or []
    if capabilities:
        info["capabilities"] = [c if isinstance(c, dict) else {"type": c} for c in capabilities]
    active = framework.get("active", True)
    return {
        "framework_info": info,
        "active": active,
        "connected": framework.get("connected", active),
        "recovered": framework.get("recovered", False),
        "registered_time": seconds_to_time(framework.get("registered_time")),
        "reregistered_time": seconds_to_time(framework.get("reregistered_time")),
    }


def framework_to_legacy(framework: dict, tasks: list[dict], completed: list[dict],
                        pid: str | None = None) -> dict:
    info = framework["framework_info"]
    result: dict[str, Any] = {"id": unwrap(info["id"])}
    if pid:
        result["pid"] = pid
    for key in FRAMEWORK_INFO_KEYS:
        if key in info:
            result[key] = info[key]
    result["capabilities"] = [c.get("type") for c in info.get("capabilities", [])]
    result.update({
        "active": framework.get("active", True),
        "connected": framework.get("connected", True),
        "registered_time": time_to_seconds(framework.get("registered_time")),
        "reregistered_time": time_to_seconds(framework.get("reregistered_time")),
        "unregistered_time": 0,
        "tasks": [task_to_legacy(t) for t in tasks],
        "completed_tasks": [task_to_legacy(t) for t in completed],
        "offers": [],
        "executors": [],
    })
    return result
