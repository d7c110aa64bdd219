"""Helpers of the overlay unit tests: agents, and a lease table fed like the stage feeds it."""

from __future__ import annotations

from processors.overlay.config import OverlayConfig, parse_config
from processors.overlay.table import LeaseTable
from schemas.mesos import Agent

DEFAULT = OverlayConfig()
V4_ONLY = parse_config(["dcos=9.0.0.0/8,24"], vtep6="")


def agent(n: int, ip: str | None = "") -> Agent:
    """Agent ``S<n>`` at 10.0.0.<n> (``ip``: another address, or None for none)."""
    return Agent(id=f"S{n}", hostname=f"host-{n}", ip=f"10.0.0.{n}" if ip == "" else ip)


def arrive(table: LeaseTable, *agents: Agent, at: float = 0.0):
    return table.apply_batch([("agent", a.id, a) for a in agents], [at] * len(agents))[0]


def leave(table: LeaseTable, *agent_ids: str, at: float):
    return table.apply_batch([("agent", agent_id, None) for agent_id in agent_ids], [at] * len(agent_ids))[0]


def free_by_hand(table: LeaseTable, key: str):
    return table.apply_batch([("lease", key, None)], [0.0])[0]


def placed(table: LeaseTable) -> dict[str, tuple]:
    """Lease key -> (subnet, VTEP IPv4, VTEP IPv6, gone_since)."""
    return {key: (lease.subnet, lease.vtep_ip, lease.vtep_ip6, lease.gone_since) for key, lease in sorted(table.records.items())}
