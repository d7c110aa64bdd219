"""Build the Mesos task Marathon would launch for one instance of an app.

The shapes follow what Marathon 1.x sends to Mesos and what the agent reports back
(see the fixtures in mesos-operator-api/): DiscoveryInfo ports carry the app's port
labels plus `network-scope`/`network-name`, Docker tasks get a DockerInfo with
port_mappings, UCR tasks get NetworkInfos, and the TASK_RUNNING status carries the
container's addresses.

Addresses are deterministic: Docker's bridge hands out 172.17.0.x per agent, the UCR
`mesos-bridge` 172.31.254.x per agent, and the `dcos` overlay gives agent N the subnet
9.0.N.0/24 (first half for UCR, second half for Docker, as DC/OS's Navstar splits it),
unless the agent was given its overlay subnets (simulator/overlays.py): then the lowest free
address of those, as host-local on a Wayfinder node would give.
"""

from __future__ import annotations

import base64
import zlib
from typing import Any

from simulator.convert import (pid_address, ports_to_ranges, ranges_resource, resource_port_ranges,
                               resource_ports, scalar_resource, wrap)
from simulator.marathon_apps import container_kind, network_mode, port_specs, task_name
from schemas.addresses import canonical_ip
from simulator.model import Model
from simulator.overlays import host_local_addresses


class NoCapacity(Exception):
    """No agent has the host ports the app asks for."""


def agent_ip(agent: dict) -> str | None:
    """The agent's IP: from its pid, else its hostname when that is an address."""
    candidates = (pid_address(agent.get("pid"))[0], agent["agent_info"].get("hostname"))
    return next((ip for ip in map(canonical_ip, candidates) if ip is not None), None)


def _pool(network: str, kind: str, agent_index: int) -> list[str]:
    """The addresses one agent can hand out on one network, in allocation order."""
    if network == "docker-bridge":
        return [f"172.17.0.{n}" for n in range(2, 255)]
    if network == "mesos-bridge":
        return [f"172.31.254.{n}" for n in range(2, 255)]
    second = 0 if network == "dcos" else 1 + zlib.crc32(network.encode()) % 200
    hosts = range(130, 255) if kind == "DOCKER" else range(2, 128)
    return [f"9.{second}.{agent_index % 256}.{n}" for n in hosts]


class Placement:
    """Free host ports and container IPs while planning several launches at once."""

    def __init__(self, model: Model):
        self.model = model
        self.ports: dict[str, set[int]] = {}
        self.ips: dict[str, set[str]] = {}

    def _used_ports(self, agent_id: str) -> set[int]:
        if agent_id not in self.ports:
            self.ports[agent_id] = {p for t in self.model.agent_tasks(agent_id)
                                    for p in resource_ports(t.get("resources"))}
        return self.ports[agent_id]

    def _used_ips(self, agent_id: str) -> set[str]:
        if agent_id not in self.ips:
            self.ips[agent_id] = {ip for t in self.model.agent_tasks(agent_id) for ip in task_ips(t)}
        return self.ips[agent_id]

    def take_ports(self, agent_id: str, wanted: list[int | None]) -> list[int | None]:
        """Host ports for the wanted list (None = none, 0 = any free); NoCapacity if short."""
        used = self._used_ports(agent_id)
        agent = self.model.agents[agent_id]
        ranges = resource_port_ranges(agent["agent_info"].get("resources"))
        fixed = [p for p in wanted if p]
        if any(p in used for p in fixed) or len(set(fixed)) != len(fixed):
            raise NoCapacity(f"agent {agent_id} has no free host port {fixed}")
        candidates = (p for b, e in ranges for p in range(b, e + 1) if p not in used and p not in fixed)
        result: list[int | None] = []
        for port in wanted:
            if port == 0:
                port = next(candidates, None)
                if port is None:
                    raise NoCapacity(f"agent {agent_id} has no free ports left")
            result.append(port)
        used.update(p for p in result if p)
        return result

    def take_ip(self, agent_id: str, network: str, kind: str) -> str:
        """The lowest free address: of the subnet the agent was given on this overlay (as
        host-local hands them out), else of the made-up pool."""
        used = self._used_ips(agent_id)
        leased = self.model.agent_overlays.get(agent_id, {}).get(network, {}).get(kind)
        pool = host_local_addresses(leased) if leased else _pool(network, kind, self.model.agent_index.get(agent_id, 1))
        for ip in pool:
            if ip not in used:
                used.add(ip)
                return ip
        raise NoCapacity(f"agent {agent_id} has no free address on {network}")

    def claim(self, agent_id: str, ports: list[int], ips: list[str]) -> None:
        """Record addresses a loaded task already holds."""
        self._used_ports(agent_id).update(ports)
        self._used_ips(agent_id).update(ips)


def task_ips(task: dict) -> list[str]:
    """Container addresses from the task's latest status that reported any."""
    for status in reversed(task.get("statuses", [])):
        infos = status.get("container_status", {}).get("network_infos", [])
        ips = [a["ip_address"] for n in infos for a in n.get("ip_addresses", []) if a.get("ip_address")]
        if ips:
            return ips
    return []


def new_status_uuid(model: Model) -> str:
    return base64.b64encode(model.rng.getrandbits(128).to_bytes(16, "big")).decode()


def build_task(model: Model, app: dict, agent_id: str, framework_id: str, placement: Placement,
               task_id: str | None = None, host_ports: list[int] | None = None,
               ip_addresses: list[dict] | None = None) -> tuple[dict, dict]:
    """(the TASK_STAGING task, the TASK_RUNNING status without its timestamp)."""
    app_id = app["id"]
    task_id = task_id or f"{app_id.strip('/').replace('/', '_')}.{model.new_uuid()}"
    mode, network = network_mode(app)
    kind = container_kind(app) or ("MESOS" if mode != "host" else None)
    specs = port_specs(app)
    wanted = [spec["host_port"] for spec in specs]
    if host_ports is not None:
        given = iter(host_ports)
        wanted = [None if w is None else next(given, 0) for w in wanted]
        placement.claim(agent_id, [p for p in wanted if p], [])
    else:
        wanted = placement.take_ports(agent_id, wanted)
    agent = model.agents[agent_id]
    ip_network = ("docker-bridge" if kind == "DOCKER" else "mesos-bridge") if mode == "bridge" else network
    if ip_addresses:
        ips = [(a.get("ipAddress"), a.get("protocol", "IPv4")) for a in ip_addresses if a.get("ipAddress")]
        placement.claim(agent_id, [], [ip for ip, _ in ips])
    elif mode == "host":
        ips = [(agent_ip(agent), "IPv4")] if agent_ip(agent) else []
    else:
        ips = [(placement.take_ip(agent_id, ip_network or "dcos", kind or "MESOS"), "IPv4")]
    role = _framework_role(model, framework_id)
    name = task_name(app_id)
    task: dict[str, Any] = {
        "name": name,
        "task_id": wrap(task_id),
        "framework_id": wrap(framework_id),
        "agent_id": wrap(agent_id),
        "state": "TASK_STAGING",
        "resources": _resources(app, [p for p in wanted if p], role),
        "discovery": {"visibility": "FRAMEWORK", "name": name, "ports": _discovery(specs, wanted, mode, network)},
    }
    if app.get("labels"):
        task["labels"] = {"labels": [{"key": k, "value": str(v)} for k, v in app["labels"].items()]}
    mappings = [{"host_port": hp, "container_port": spec["container_port"], "protocol": proto}
                for spec, hp in zip(specs, wanted) if hp and mode != "host" for proto in spec["protocols"]]
    network_infos = []
    if kind == "DOCKER":
        image = (app.get("container", {}).get("docker") or {}).get("image", "")
        docker_network = {"host": "HOST", "bridge": "BRIDGE", "container": "USER"}[mode]
        docker: dict[str, Any] = {"image": image, "network": docker_network}
        if mappings:
            docker["port_mappings"] = mappings
        docker.update(privileged=False, force_pull_image=False,
                      parameters=[{"key": "label", "value": f"MESOS_TASK_ID={task_id}"}])
        task["container"] = {"type": "DOCKER", "docker": docker}
        if mode == "container":
            task["container"]["network_infos"] = [{"name": network}]
        network_infos = [{"ip_addresses": [{"protocol": p, "ip_address": ip} for ip, p in ips]}]
        if mode == "container":
            network_infos[0]["name"] = network
    elif kind == "MESOS":
        image = ((app.get("container") or {}).get("docker") or {}).get("image")
        mesos = {"image": {"type": "DOCKER", "docker": {"name": image}, "cached": True}} if image else {}
        task["container"] = {"type": "MESOS", "mesos": mesos}
        if mode != "host":
            declared: dict[str, Any] = {"ip_addresses": [{"protocol": "IPv4"}], "name": ip_network, "labels": {}}
            if mappings:
                declared["port_mappings"] = mappings
            task["container"]["network_infos"] = [declared]
            network_infos = [dict(declared, ip_addresses=[{"protocol": p, "ip_address": ip} for ip, p in ips])]
    if not network_infos and ips:
        network_infos = [{"ip_addresses": [{"protocol": p, "ip_address": ip} for ip, p in ips]}]
    status: dict[str, Any] = {
        "task_id": wrap(task_id), "state": "TASK_RUNNING", "source": "SOURCE_EXECUTOR",
        "agent_id": wrap(agent_id), "executor_id": wrap(task_id), "uuid": new_status_uuid(model),
        "container_status": {"container_id": wrap(model.new_uuid()), "network_infos": network_infos,
                             "executor_pid": model.rng.randrange(1000, 60000)},
    }
    if app.get("healthChecks"):
        # A simulated health check passes at once, so the task is routable right away;
        # POST /sim/tasks/{id}/health flips it.
        status["healthy"] = True
    return task, status


def _framework_role(model: Model, framework_id: str) -> str:
    info = model.frameworks.get(framework_id, {}).get("framework_info", {})
    return info.get("role") or (info.get("roles") or ["*"])[0]


def _resources(app: dict, ports: list[int], role: str) -> list[dict]:
    extra = {"allocation_info": {"role": role}}
    resources = [scalar_resource("cpus", app.get("cpus", 1.0), extra),
                 scalar_resource("mem", app.get("mem", 128.0), extra)]
    if app.get("disk"):
        resources.append(scalar_resource("disk", app["disk"], extra))
    if ports:
        resources.append(ranges_resource(ports_to_ranges(ports), extra))
    return resources


def _discovery(specs: list[dict], host_ports: list[int | None], mode: str, network: str | None) -> dict:
    ports = []
    for spec, host_port in zip(specs, host_ports):
        labels = [{"key": k, "value": str(v)} for k, v in spec["labels"].items()]
        if mode == "bridge" or (mode == "container" and host_port):
            labels.append({"key": "network-scope", "value": "host"})
        elif mode == "container":
            labels += [{"key": "network-scope", "value": "container"},
                       {"key": "network-name", "value": network}]
        number = host_port if (mode == "host" or host_port) else spec["container_port"]
        for protocol in spec["protocols"]:
            port: dict[str, Any] = {"number": number or 0}
            if spec.get("name"):
                port["name"] = spec["name"]
            port["protocol"] = protocol
            if labels:
                port["labels"] = {"labels": labels}
            ports.append(port)
    return {"ports": ports} if ports else {}

