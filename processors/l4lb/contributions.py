"""What one task contributes to the VIP table: (VIP, backend, weight) triples. Pure.

This is the unit a stream processor re-keys: every contribution names its ``VipRef``, so
the contributions of all tasks can be routed by VIP and folded per VIP (see derive.py,
which builds the whole table from exactly these contributions).

Rules (reference §3.2):
- only TASK_RUNNING and TASK_KILLING tasks whose agent and framework are known; dcos-net
  holds a task back until both are, and so do we (no rejection: it is not refused, it waits);
- weight 1 for running and healthy, or running without a Mesos health check; weight 0 for
  running with ``healthy: false``, for running with a health check that has no result yet,
  and for killing (drain: existing connections go on, new ones go elsewhere);
- IP VIPs only get backends of their own address family; named VIPs take both families.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache

from processors.l4lb.labels import Declaration, Rejection, VipRef, declarations_of
from schemas.addresses import canonical_ip
from schemas.l4lb import Backend
from schemas.mesos import Agent, Framework, Task

CONSIDERED_STATES = frozenset({"TASK_RUNNING", "TASK_KILLING"})


@dataclass(frozen=True)
class Contribution:
    """One backend of one VIP, offered by one task."""

    vip: VipRef
    ip: str
    port: int
    weight: int
    task_id: str
    agent_ip: str | None
    # <framework id>/<task id>: who offers it (two frameworks may both run a task "server-0").
    task_key: str = ""

    def backend(self) -> Backend:
        return Backend(ip=self.ip, port=self.port, weight=self.weight, task_id=self.task_id, agent_ip=self.agent_ip)


@dataclass(frozen=True)
class TaskVips:
    """Everything one task adds to the VIP table, and the declarations of it that were refused."""

    contributions: tuple[Contribution, ...] = ()
    rejections: tuple[Rejection, ...] = ()


def weight_of(task: Task) -> int | None:
    """The IPVS weight of the task's backends, or None when the task is no backend at all."""
    if task.state == "TASK_KILLING":
        return 0
    if task.state != "TASK_RUNNING":
        return None
    if task.healthy is None:
        # "No health check" means weight 1; a health check *without a result yet* does not.
        # dcos-net (dcos_net_mesos_listener:handle_task_healthy) reads a task that has a
        # health_check but no `healthy` in its status as unhealthy, and Marathon does not count
        # such a task ready either. So it joins with weight 0 and gets traffic once the first
        # check passes, instead of taking connections during its grace period.
        return 0 if task.health_check else 1
    return 1 if task.healthy else 0


# Parsed addresses are cached: the same agent and container IPs come back with every change of
# their tasks, and parsing one costs more than the rest of a contribution.
ADDRESS_CACHE = 1 << 16


@lru_cache(maxsize=ADDRESS_CACHE)
def address_order(ip: str) -> tuple[int, int]:
    """(version, integer value) of a canonical IP: the order backends are listed in."""
    address = ipaddress.ip_address(ip)
    return address.version, int(address)


def family_of(ip: str) -> int:
    return address_order(ip)[0]


def task_ips(task: Task) -> list[str]:
    """The container IPs of the newest status that reports any (IPv4 and IPv6, in Mesos order).

    Not simply the newest status: a TASK_KILLING status often comes without container_status,
    and a draining backend must keep its address.
    """
    for status in reversed(task.statuses):
        ips = []
        for info in status.network_infos:
            for text in info.ip_addresses:
                ip = canonical_ip(text)
                if ip is not None and ip not in ips:
                    ips.append(ip)
        if ips:
            return ips
    return []


def _backend_ips(declaration: Declaration, task: Task, agent: Agent) -> tuple[list[str], str | None]:
    """(backend IPs, why there are none) for one declaration."""
    if declaration.scope == "host":
        if agent.ip is None:
            return [], f"the backend is the agent's IP, and agent {agent.hostname!r} has none"
        candidates = [agent.ip]
    else:
        candidates = task_ips(task)
        if not candidates:
            # dcos-net does not fall back to the agent IP here; neither do we.
            return [], "network-scope container, but the task reports no IP address"
    if declaration.named:
        return candidates, None
    family = family_of(declaration.address)
    kept = [ip for ip in candidates if family_of(ip) == family]
    return kept, None if kept else f"IPv{family} VIP, but the backend has only {', '.join(candidates)}"


def contributions_of(task: Task, agent: Agent | None, framework: Framework | None) -> TaskVips:
    """The task's backends for every VIP it declares, plus the declarations refused on the way."""
    weight = weight_of(task)
    if weight is None or agent is None or framework is None:
        return TaskVips()
    declarations, rejections = declarations_of(task)
    contributions: set[Contribution] = set()
    for declaration in declarations:
        ips, why = _backend_ips(declaration, task, agent)
        if why:
            rejections.append(Rejection(task.id, declaration.label, declaration.value, why))
        vip = VipRef(
            protocol=declaration.protocol,
            address=declaration.address,
            port=declaration.vip_port,
            named=declaration.named,
            framework=framework.name if declaration.named else "",
        )
        for ip in ips:
            contributions.add(Contribution(vip, ip, declaration.port, weight, task.id, agent.ip, task.key))
    return TaskVips(tuple(sorted(contributions, key=contribution_order)), tuple(sorted(set(rejections))))


def contribution_order(contribution: Contribution) -> tuple:
    """A total order on contributions, so every output built from them is byte-identical."""
    return (contribution.vip, *address_order(contribution.ip), contribution.port, contribution.task_id,
            contribution.task_key, contribution.weight)
