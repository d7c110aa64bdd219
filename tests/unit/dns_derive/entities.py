"""Small Mesos entities for the DNS rule tests: one agent, one framework, tasks built per test."""

from __future__ import annotations

from msgspec.structs import replace

from schemas.mesos import (
    Agent,
    Container,
    Discovery,
    DiscoveryPort,
    Framework,
    NetworkInfo,
    PortMapping,
    PortRange,
    Task,
    TaskStatus,
)

AGENT = Agent(id="20160107-001256-134875658-5050-27524-S3", hostname="10.0.0.3", ip="10.0.0.3", port=5051)
FRAMEWORK = Framework(id="fw-1", name="marathon", hostname="10.0.0.1", ip="10.0.0.1", port=15101)

__all__ = [
    "AGENT", "FRAMEWORK", "Container", "Discovery", "DiscoveryPort", "PortMapping", "PortRange", "replace", "running", "task",
]


def running(*ips: str, timestamp: float = 2.0, labels: dict[str, str] | None = None) -> TaskStatus:
    """A TASK_RUNNING status reporting ``ips`` on one network."""
    infos = [NetworkInfo(ip_addresses=list(ips))] if ips else []
    return TaskStatus(state="TASK_RUNNING", timestamp=timestamp, network_infos=infos, labels=labels or {})


def task(name: str = "web", *, id: str | None = None, ips: tuple[str, ...] = (), agent: Agent = AGENT, framework: Framework = FRAMEWORK, **fields) -> Task:
    fields.setdefault("statuses", [running(*ips)])
    return Task(
        id=id or f"{name}.0ef76549-2630-11e8-af52-70b3d5800001",
        name=name,
        framework_id=framework.id,
        agent_id=agent.id,
        state=fields.pop("state", "TASK_RUNNING"),
        **fields,
    )
