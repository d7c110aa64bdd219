"""Marathon app definitions: ids, networking, ports, and apps inferred from Mesos tasks.

Marathon accepted several shapes over its life: 1.4 (`container.docker.network`,
`container.docker.portMappings`, `ipAddress`) and 1.5+ (`networks`,
`container.portMappings`). The functions here read all of them, so fixtures from
either era drive the same launch code.
"""

from __future__ import annotations

import calendar
import re
import time
from typing import Any

from simulator.convert import labels_as_dict, resource_ports, unwrap

# Marathon's task-id grammar (core/task/Task.scala): the greedy first group is the app
# id with '/' replaced by '_'. Instance-era ids: `web.instance-<uuid>._app.2` (an app,
# incarnation 2) or `pod.instance-<uuid>.container` (a pod).
INSTANCE_TASK_ID = re.compile(r"^(.+)\.(instance-|marathon-)([^_.]+)(\.[^.]+)?(\.\d+)?$")
LEGACY_TASK_ID = re.compile(r"^(.+)[._]([^_.]+)$")
PATH_SEGMENT = re.compile(r"^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*"
                          r"([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])$")
# Marathon hands out service ports from --local_port_min/max.
SERVICE_PORT_RANGE = (10000, 20000)
SCOPE_LABELS = ("network-scope", "network-name")


def iso(seconds: float | None) -> str | None:
    """Marathon's timestamp format: 2016-02-01T22:14:03.432Z."""
    if seconds is None:
        return None
    millis = int(round(seconds * 1000))
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(millis // 1000)) + f".{millis % 1000:03d}Z"


def parse_iso(text: str | None) -> float | None:
    if not text:
        return None
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z?$", text)
    if not match:
        return None
    whole = calendar.timegm(time.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S"))
    return whole + float(match.group(2) or 0.0)


# -- ids ------------------------------------------------------------------------------

def normalize_app_id(app_id: str) -> str:
    return "/" + "/".join(part for part in str(app_id).split("/") if part)


def app_id_problem(app_id: Any) -> str | None:
    """Why Marathon would refuse this id, or None."""
    if not isinstance(app_id, str) or not app_id.strip("/"):
        return "app definition needs a non-empty string 'id'"
    for segment in normalize_app_id(app_id).strip("/").split("/"):
        if not PATH_SEGMENT.match(segment):
            return (f"invalid app id '{app_id}': path segments must be lowercase letters, "
                    "digits, hyphens and dots")
    return None


def app_id_from_task_id(task_id: str) -> str | None:
    match = INSTANCE_TASK_ID.match(task_id) or LEGACY_TASK_ID.match(task_id)
    if not match:
        return None
    return "/" + match.group(1).replace("_", "/")


def app_id_from_task_name(name: str) -> str:
    """Marathon names a task after its app id reversed: /group/app -> app.group."""
    return "/" + "/".join(reversed([p for p in name.split(".") if p]))


def app_id_for_task(task: dict) -> str:
    return (app_id_from_task_id(unwrap(task.get("task_id")))
            or app_id_from_task_name(task.get("name") or unwrap(task.get("task_id"))))


def task_name(app_id: str) -> str:
    return ".".join(reversed(app_id.strip("/").split("/")))


def task_id_prefix(app_id: str) -> str:
    return app_id.strip("/").replace("/", "_")


def instance_id(task_id: str) -> str:
    match = INSTANCE_TASK_ID.match(task_id)
    if match:
        return f"{match.group(1)}.{match.group(2)}{match.group(3)}"
    match = LEGACY_TASK_ID.match(task_id)
    if match:
        return f"{match.group(1)}.marathon-{match.group(2)}"
    return task_id


# -- networking -----------------------------------------------------------------------

def network_mode(app: dict) -> tuple[str, str | None]:
    """('host'|'bridge'|'container', network name) for any Marathon 1.x app shape."""
    networks = app.get("networks") or []
    if networks:
        mode = networks[0].get("mode", "container")
        if mode == "container/bridge":
            return "bridge", None
        if mode == "container":
            return "container", networks[0].get("name") or "dcos"
        return "host", None
    container = app.get("container") or {}
    docker_network = (container.get("docker") or {}).get("network")
    ip_address = app.get("ipAddress")
    if docker_network == "BRIDGE":
        return "bridge", None
    if ip_address or docker_network == "USER":
        return "container", (ip_address or {}).get("networkName") or "dcos"
    return "host", None


def container_kind(app: dict) -> str | None:
    """'DOCKER', 'MESOS' or None (a plain command task)."""
    container = app.get("container")
    if not container:
        return None
    return container.get("type") or ("DOCKER" if container.get("docker") else "MESOS")


def port_mappings(app: dict) -> list[dict]:
    container = app.get("container") or {}
    return container.get("portMappings") or (container.get("docker") or {}).get("portMappings") or []


def port_definitions(app: dict) -> list[dict]:
    if app.get("portDefinitions") is not None:
        return app["portDefinitions"]
    if app.get("ports") is not None:
        return [{"port": p} for p in app["ports"]]
    # Marathon gives a host-networked app one port when it asks for none.
    return [{"port": 0}]


def port_specs(app: dict) -> list[dict]:
    """One entry per app port: name, protocols, container port, wanted host port
    (None = no host port, 0 = any free port), service port, labels."""
    mode, _ = network_mode(app)
    specs = []
    if mode == "host":
        for pd in port_definitions(app):
            fixed = pd.get("port", 0) if app.get("requirePorts") else 0
            specs.append({"name": pd.get("name"), "protocols": _protocols(pd),
                          "container_port": None, "host_port": fixed,
                          "service_port": pd.get("port", 0), "labels": pd.get("labels") or {}})
    else:
        for pm in port_mappings(app):
            host_port = pm.get("hostPort", 0 if mode == "bridge" else None)
            specs.append({"name": pm.get("name"), "protocols": _protocols(pm),
                          "container_port": pm.get("containerPort", 0), "host_port": host_port,
                          "service_port": pm.get("servicePort", 0), "labels": pm.get("labels") or {}})
    return specs


def _protocols(port: dict) -> list[str]:
    return [p.strip() for p in str(port.get("protocol") or "tcp").split(",") if p.strip()]


def service_ports(app: dict) -> list[int]:
    return [spec["service_port"] for spec in port_specs(app)]


def assign_service_ports(app: dict, taken: set[int]) -> dict:
    """Replace service port 0 with a free port from Marathon's range, as Marathon does."""
    app = dict(app)
    free = (p for p in range(*SERVICE_PORT_RANGE) if p not in taken)

    def fill(entries: list[dict], key: str) -> list[dict]:
        result = []
        for entry in entries:
            entry = dict(entry)
            if not entry.get(key):
                entry[key] = next(free)
            taken.add(entry[key])
            result.append(entry)
        return result

    mode, _ = network_mode(app)
    if mode == "host":
        app["portDefinitions"] = fill(port_definitions(app), "port")
        app.pop("ports", None)
    else:
        container = dict(app.get("container") or {})
        if "portMappings" in container or not (container.get("docker") or {}).get("portMappings"):
            container["portMappings"] = fill(container.get("portMappings") or [], "servicePort")
        else:
            docker = dict(container["docker"])
            docker["portMappings"] = fill(docker["portMappings"], "servicePort")
            container["docker"] = docker
        app["container"] = container
    return app


def used_service_ports(apps: dict[str, dict]) -> set[int]:
    return {port for app in apps.values() for port in service_ports(app) if port}


# -- apps inferred from Mesos tasks ---------------------------------------------------

def synthesize_app(app_id: str, tasks: list[dict]) -> dict:
    """A plausible definition for Marathon tasks that arrived without their app."""
    first = tasks[0]
    scalars = {r["name"]: r["scalar"]["value"] for r in first.get("resources", []) if "scalar" in r}
    app: dict[str, Any] = {
        "id": app_id,
        "instances": sum(1 for t in tasks if t.get("state") == "TASK_RUNNING"),
        "cpus": scalars.get("cpus", 0.1),
        "mem": scalars.get("mem", 128.0),
        "disk": scalars.get("disk", 0.0),
        "labels": labels_as_dict(first.get("labels")),
    }
    container = first.get("container") or {}
    discovery_ports = (first.get("discovery") or {}).get("ports", {}).get("ports", [])
    docker = container.get("docker") or {}
    mesos_networks = container.get("network_infos") or []
    mappings = docker.get("port_mappings") or [m for n in mesos_networks for m in n.get("port_mappings", [])]
    named = [n.get("name") for n in mesos_networks if n.get("name") and n.get("name") != "mesos-bridge"]
    if container.get("type") == "DOCKER" and docker.get("image"):
        app["container"] = {"type": "DOCKER", "docker": {"image": docker["image"]}}
    elif (container.get("mesos") or {}).get("image"):
        image = container["mesos"]["image"].get("docker", {}).get("name", "")
        app["container"] = {"type": "MESOS", "docker": {"image": image}}
    if docker.get("network") == "BRIDGE" or any(n.get("name") == "mesos-bridge" for n in mesos_networks):
        app["networks"] = [{"mode": "container/bridge"}]
        by_host = {p.get("number"): p for p in discovery_ports}
        app.setdefault("container", {"type": "MESOS"})["portMappings"] = [
            _mapping(m["container_port"], 0, m.get("protocol"), by_host.get(m.get("host_port")))
            for m in mappings]
    elif docker.get("network") == "USER" or named:
        app["networks"] = [{"mode": "container", "name": (named or ["dcos"])[0]}]
        app.setdefault("container", {"type": "MESOS"})["portMappings"] = [
            _mapping(p.get("number", 0), None, p.get("protocol"), p) for p in _dedupe(discovery_ports)]
    else:
        ports = _dedupe(discovery_ports) or [{"number": p} for p in resource_ports(first.get("resources"))]
        app["portDefinitions"] = [_definition(p) for p in ports]
    return app


def _dedupe(discovery_ports: list[dict]) -> list[dict]:
    """tcp and udp on one port are two discovery entries but one app port."""
    seen: dict[Any, dict] = {}
    for port in discovery_ports:
        key = (port.get("number"), port.get("name"))
        if key in seen:
            seen[key] = dict(seen[key], protocol=f"{seen[key].get('protocol', 'tcp')},{port.get('protocol', 'tcp')}")
        else:
            seen[key] = port
    return list(seen.values())


def _port_labels(port: dict | None) -> dict[str, str]:
    labels = labels_as_dict((port or {}).get("labels"))
    return {k: v for k, v in labels.items() if k not in SCOPE_LABELS}


def _mapping(container_port: int, host_port: int | None, protocol: str | None,
             port: dict | None) -> dict:
    mapping: dict[str, Any] = {"containerPort": container_port, "protocol": protocol or "tcp",
                               "servicePort": 0, "labels": _port_labels(port)}
    if host_port is not None:
        mapping["hostPort"] = host_port
    if port and port.get("name"):
        mapping["name"] = port["name"]
    return mapping


def _definition(port: dict) -> dict:
    definition: dict[str, Any] = {"port": 0, "protocol": port.get("protocol", "tcp"),
                                  "labels": _port_labels(port)}
    if port.get("name"):
        definition["name"] = port["name"]
    return definition
