"""The lease table (pure): which subnet of each overlay, and which VTEP, every agent holds.

- An agent in the ``agents`` table gets, per overlay, the lowest free per-agent subnet, and
  one VTEP IPv4 (and IPv6, when a range is configured) for all its overlays: the lowest free
  address of the range. A lease never moves once given: a changed agent record changes only
  the lease's ``agent_ip``.
- A tombstoned agent keeps its leases, marked ``gone_since`` (the time the tombstone was
  observed), for the grace period; back within it, it keeps them. ``tick(now)`` frees what
  outlived the grace: time alone changes the table there.
- The table starts from the leases a previous run published (``published``), so a restart,
  a replay or another processor taking over hands out nothing new; a published lease that
  does not fit the configuration or conflicts with another is refused (and so withdrawn).
- A lease tombstoned by hand in the ``overlay`` topic (kind ``lease``, value None) is freed at
  once if its agent is gone; a registered agent keeps its lease and it is published again.
- What cannot be leased (no IP, a range exhausted) is reported, once per reason; the agent
  waits for a free subnet and gets one as soon as one is freed. Other agents are unaffected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from processors.overlay.addresses import (
    IndexPool, halves_of, subnet_index, subnet_of, vtep_address, vtep_capacity, vtep_index, vtep_mac,
)
from processors.overlay.config import Overlay, OverlayConfig
from schemas.mesos import Agent
from schemas.overlay import Lease, lease_key

Changes = dict[str, Lease | None]
Causes = dict[str, int]
Refusal = tuple[str, str, object]  # (what, why, raw value) for ``rejections``


class LeaseTable:
    def __init__(self, config: OverlayConfig, published: Iterable[Lease] = (), departed: Mapping[str, float] | None = None):
        self.config = config
        self.overlays = config.by_name()
        self.records: dict[str, Lease] = {}
        self.agents: dict[str, Agent] = {}  # registered agents
        self.departed: dict[str, float] = {}  # agent id -> when it left, while its leases are kept
        self._subnets = {name: IndexPool(o.capacity) for name, o in self.overlays.items()}
        self._subnet_of: dict[str, int] = {}  # lease key -> subnet index
        self._vteps = IndexPool(vtep_capacity(config.vtep))
        self._vteps6 = IndexPool(vtep_capacity(config.vtep6)) if config.vtep6 is not None else None
        self._vtep_of: dict[str, int] = {}  # agent id -> VTEP index
        self._vtep6_of: dict[str, int] = {}
        self._unconfirmed: set[str] = set()  # agents with published leases, not seen registered or gone yet
        self._reported: dict[tuple[str, str], str] = {}  # (agent, overlay or "") -> the reason last reported
        self._refusals: list[Refusal] = []
        self._seed(sorted(published, key=lambda lease: (lease.overlay, lease.agent_id)), departed or {})

    # -- inputs ---------------------------------------------------------------------------
    def apply_batch(self, updates: Sequence[tuple[str, str, object]],
                    observed_at: Sequence[float] | None = None) -> tuple[Changes, Causes]:
        """``(kind, key, value or None)``: kind ``agent`` (key: the agent id) or ``lease`` (key:
        the lease key; only a tombstone matters). ``observed_at[i]``: when update i was
        observed, in seconds (a departure's ``gone_since``)."""
        changes: Changes = {}
        causes: Causes = {}
        for index, (kind, key, value) in enumerate(updates):
            at = observed_at[index] if observed_at is not None else 0.0
            if kind == "agent":
                found = self._put_agent(key, value) if value is not None else self._remove_agent(key, at)
            elif kind == "lease" and value is None:
                found = self._freed_by_hand(key)
            else:
                continue  # a lease value is this stage's own output coming back
            changes.update(found)
            causes.update(dict.fromkeys(found, index))
        return changes, causes

    def tick(self, now: float) -> Changes:
        """Frees the leases of agents gone for the grace period; agents with published leases
        never seen since (their tombstone compacted away) count as gone from now."""
        changes: Changes = {}
        for agent_id in sorted(self._unconfirmed):
            changes.update(self._mark_gone(agent_id, now))
        self._unconfirmed.clear()
        expired = [agent_id for agent_id, since in self.departed.items() if now - since >= self.config.grace_s]
        for agent_id in expired:
            del self.departed[agent_id]
            changes.update(self._release(agent_id))
        if expired:
            changes.update(self._fill_waiting())
        return changes

    def take_refusals(self) -> list[Refusal]:
        taken, self._refusals = self._refusals, []
        return taken

    def leases_of(self, agent_id: str) -> dict[str, Lease]:
        """Overlay name -> the agent's lease."""
        found = {}
        for name in self.overlays:
            lease = self.records.get(lease_key(name, agent_id))
            if lease is not None:
                found[name] = lease
        return found

    # -- agents ---------------------------------------------------------------------------
    def _put_agent(self, agent_id: str, agent: Agent) -> Changes:
        self.agents[agent_id] = agent
        self._unconfirmed.discard(agent_id)
        self.departed.pop(agent_id, None)
        changes: Changes = {}
        held = self.leases_of(agent_id)
        ip = agent.ip or next((lease.agent_ip for lease in held.values()), None)
        if agent.ip:
            self._reported.pop((agent_id, "ip"), None)
        else:
            self._refuse(agent_id, "ip", f"agent {agent_id}", f"agent {agent.hostname} has no IP address: "
                         + ("its leases keep the last one" if held else "no overlay lease"), agent.hostname)
        for name, lease in held.items():  # back, or moved: the lease stays, with the agent's IP now
            wanted = Lease(**{**_fields(lease), "agent_ip": ip, "gone_since": None})
            if wanted != lease:
                self.records[lease_key(name, agent_id)] = changes[lease_key(name, agent_id)] = wanted
        if ip:
            changes.update(self._lease_missing(agent_id, ip))
        return changes

    def _remove_agent(self, agent_id: str, at: float) -> Changes:
        self.agents.pop(agent_id, None)
        self._unconfirmed.discard(agent_id)
        self._forget_reports(agent_id)
        if not self.leases_of(agent_id):
            self._free_vteps(agent_id)  # taken for leases that found no subnet
        return self._mark_gone(agent_id, at)

    def _mark_gone(self, agent_id: str, at: float) -> Changes:
        held = self.leases_of(agent_id)
        if not held:
            return {}
        since = min(at, self.departed.get(agent_id, at))
        self.departed[agent_id] = since
        changes: Changes = {}
        for name, lease in held.items():
            if lease.gone_since is None or lease.gone_since > since:
                key = lease_key(name, agent_id)
                self.records[key] = changes[key] = Lease(**{**_fields(lease), "gone_since": since})
        return changes

    def _freed_by_hand(self, key: str) -> Changes:
        lease = self.records.get(key)
        if lease is None:
            return {}
        if lease.agent_id in self.agents:
            self._refusals.append((f"overlay lease {key}", f"deleted by hand while agent {lease.agent_id} is registered: "
                                   "the lease stays and is published again (it is freed once the agent is gone)", None))
            return {key: lease}
        self._free_lease(key, lease)
        if not self.leases_of(lease.agent_id):
            self._free_vteps(lease.agent_id)
            self.departed.pop(lease.agent_id, None)
            self._unconfirmed.discard(lease.agent_id)
        return self._fill_waiting()  # the topic already holds the tombstone: nothing to publish for it

    def _release(self, agent_id: str) -> Changes:
        changes: Changes = {}
        for name, lease in self.leases_of(agent_id).items():
            self._free_lease(lease_key(name, agent_id), lease)
            changes[lease_key(name, agent_id)] = None
        self._free_vteps(agent_id)
        return changes

    def _free_lease(self, key: str, lease: Lease) -> None:
        del self.records[key]
        self._subnets[lease.overlay].free(self._subnet_of.pop(key))

    def _free_vteps(self, agent_id: str) -> None:
        if agent_id in self._vtep_of:
            self._vteps.free(self._vtep_of.pop(agent_id))
        if agent_id in self._vtep6_of:
            self._vteps6.free(self._vtep6_of.pop(agent_id))

    # -- allocating -----------------------------------------------------------------------
    def _lease_missing(self, agent_id: str, ip: str) -> Changes:
        """A lease of every overlay the agent lacks one of, where there is room."""
        changes: Changes = {}
        if not self._vteps_of(agent_id):
            return changes
        for name, overlay in self.overlays.items():
            key = lease_key(name, agent_id)
            if key in self.records:
                continue
            index = self._subnets[name].take()
            if index is None:
                self._refuse(agent_id, name, f"overlay lease {key}",
                             f"overlay {name} is exhausted: all {overlay.capacity} /{overlay.prefix} subnets of "
                             f"{overlay.subnet} are leased; agent {agent_id} gets one once a lease is freed", ip)
                continue
            self._reported.pop((agent_id, name), None)
            self._subnet_of[key] = index
            self.records[key] = changes[key] = self._lease(overlay, agent_id, ip, index, None)
        return changes

    def _vteps_of(self, agent_id: str) -> bool:
        """Whether the agent has its VTEP addresses (taken now where it had none)."""
        for pool, held, network in ((self._vteps, self._vtep_of, self.config.vtep),
                                    (self._vteps6, self._vtep6_of, self.config.vtep6)):
            if pool is None or agent_id in held:
                continue
            index = pool.take()
            if index is None:
                self._refuse(agent_id, "", f"agent {agent_id}", f"the VTEP range {network} is exhausted: all "
                             f"{pool.capacity} addresses are held; no overlay lease until one is freed", None)
                return False
            held[agent_id] = index
        self._reported.pop((agent_id, ""), None)
        return True

    def _fill_waiting(self) -> Changes:
        """After a free: registered agents that lack a lease get one, in agent id order."""
        changes: Changes = {}
        for agent_id, agent in sorted(self.agents.items()):
            if agent.ip and len(self.leases_of(agent_id)) < len(self.overlays):
                changes.update(self._lease_missing(agent_id, agent.ip))
        return changes

    def _lease(self, overlay: Overlay, agent_id: str, agent_ip: str, index: int, gone_since: float | None) -> Lease:
        subnet = subnet_of(overlay, index)
        mesos, docker = halves_of(subnet)
        vtep = vtep_address(self.config.vtep, self._vtep_of[agent_id])
        vtep6 = vtep_address(self.config.vtep6, self._vtep6_of[agent_id]) if agent_id in self._vtep6_of else None
        return Lease(overlay=overlay.name, agent_id=agent_id, agent_ip=agent_ip, subnet=str(subnet),
                     mesos_subnet=str(mesos), docker_subnet=str(docker), vtep_ip=vtep,
                     vtep_prefix=self.config.vtep.prefixlen, vtep_mac=vtep_mac(vtep), vtep_ip6=vtep6,
                     vtep_prefix6=self.config.vtep6.prefixlen if vtep6 is not None else None, gone_since=gone_since,
                     network=str(overlay.subnet))

    # -- rejections -----------------------------------------------------------------------
    def _refuse(self, agent_id: str, overlay: str, what: str, why: str, raw: object) -> None:
        """Reported once per agent, overlay and reason: the same agent record again says nothing new."""
        if self._reported.get((agent_id, overlay)) != why:
            self._reported[(agent_id, overlay)] = why
            self._refusals.append((what, why, raw))

    def _forget_reports(self, agent_id: str) -> None:
        for name in ("", "ip", *self.overlays):
            self._reported.pop((agent_id, name), None)

    # -- seeding --------------------------------------------------------------------------
    def _seed(self, published: list[Lease], departed: Mapping[str, float]) -> None:
        """Claims what a previous run published. A lease of an overlay no longer configured, or
        whose subnet is not one of its overlay's or is another's, is refused (and so withdrawn
        at the next takeover); a VTEP address that does not fit, or that another agent holds,
        is replaced by the lowest free one, the subnet kept."""
        kept: list[tuple[Lease, int]] = []
        for lease in published:
            key = lease_key(lease.overlay, lease.agent_id)
            overlay = self.overlays.get(lease.overlay)
            if overlay is None:
                self._refusals.append((f"overlay lease {key}", f"overlay {lease.overlay} is not configured: "
                                       "the lease is withdrawn", lease.subnet))
                continue
            index = subnet_index(overlay, lease.subnet)
            if index is None or not self._subnets[overlay.name].claim(index):
                why = "is not one of its subnets" if index is None else "is leased to another agent too"
                self._refusals.append((f"overlay lease {key}", f"{lease.subnet} {why} ({overlay.spec()}): "
                                       "withdrawn, the agent gets a new lease", lease.subnet))
                continue
            self._subnet_of[key] = index
            self._claim_vtep(self._vteps, self._vtep_of, self.config.vtep, lease.agent_id, lease.vtep_ip)
            if self._vteps6 is not None and lease.vtep_ip6:
                self._claim_vtep(self._vteps6, self._vtep6_of, self.config.vtep6, lease.agent_id, lease.vtep_ip6)
            kept.append((lease, index))
        for lease, index in kept:
            if not self._vteps_of(lease.agent_id):  # its VTEP address was refused and none is free
                self._subnets[lease.overlay].free(self._subnet_of.pop(lease_key(lease.overlay, lease.agent_id)))
                continue
            gone = lease.gone_since if lease.gone_since is not None else departed.get(lease.agent_id)
            self.records[lease_key(lease.overlay, lease.agent_id)] = self._lease(
                self.overlays[lease.overlay], lease.agent_id, lease.agent_ip, index, gone)
            if gone is not None:
                self.departed[lease.agent_id] = min(gone, self.departed.get(lease.agent_id, gone))
            else:
                self._unconfirmed.add(lease.agent_id)

    def _claim_vtep(self, pool: IndexPool, held: dict[str, int], network, agent_id: str, text: str) -> None:
        if agent_id in held:
            return  # the agent's first lease named its VTEP; a different one in another lease gives way
        index = vtep_index(network, text)
        if index is not None and pool.claim(index):
            held[agent_id] = index
        else:
            self._refusals.append((f"VTEP of agent {agent_id}", f"{text} is not free in {network}: the agent gets "
                                   "the lowest free address", text))


def _fields(lease: Lease) -> dict[str, object]:
    return {name: getattr(lease, name) for name in lease.__struct_fields__}
