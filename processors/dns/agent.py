"""The DNS processor stage: tasks, agents, frameworks and the cluster in, record sets out.
DnsTable does the deriving; `processors.stage.Stage` does the batching, publishing and
rejections. A name or address that cannot be published is reported once in ``rejections``;
the entity's other names are kept.

With an ``OverlayLeases`` view (the overlay stage's leases, in the same processor: no Kafka
round trip), container addresses are checked against their agent's lease (leases.py). The
overlay stage runs first and reports the agents whose leases changed (``leases_changed``);
this stage derives those agents' tasks again in the same batch, or at the same tick when time
alone changed a lease, or before publishing at a takeover (``reseed``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from processors.dns.config import PUBLISHED, DnsConfig
from processors.dns.leases import OverlayLeases
from processors.dns.table import DnsTable
from processors.stage import Source, Stage, Update
from schemas.headers import Observation
from schemas.mesos import Agent, Cluster, Framework, Task

SOURCES = {
    "agents": Source(Agent, "agent"),
    "frameworks": Source(Framework, "framework"),
    "cluster": Source(Cluster, "cluster"),
    "tasks": Source(Task, "task"),
}
# The alias of an update that says "this agent's leases changed": not a topic this stage
# follows, the overlay stage's report.
LEASES = "overlay leases"


class DnsStage(Stage):
    name = "dns"
    output = "dns"
    sources = SOURCES

    def __init__(self, catalog, config: DnsConfig | None = None, leases: OverlayLeases | None = None):
        super().__init__(catalog)
        self.config = config or PUBLISHED
        self.leases = leases
        self._leases_changed: dict[str, Observation] = {}  # agent id -> the newest lease change's observation

    def new_table(self, published) -> DnsTable:
        self._leases_changed.clear()  # a new table reads every lease when it derives
        return DnsTable(self.config, self.leases)

    def leases_changed(self, observed: Mapping[str, Observation]) -> None:
        """Agent id -> the observation of its leases' change; derived at the next step."""
        if self.leases is None:
            return
        for agent_id, obs in observed.items():
            known = self._leases_changed.get(agent_id)
            if known is None or obs.observed_ns >= known.observed_ns:
                self._leases_changed[agent_id] = obs

    def apply_updates(self, updates: Mapping[str, list[Update]]) -> None:
        mine = [update for alias in self.sources for update in updates.get(alias, ())]
        mine += self._lease_updates()
        if mine:
            self.put_updates(mine)

    def tick(self, now: float) -> None:
        """Leases freed or given with time alone (the overlay stage ticks first)."""
        if lease_updates := self._lease_updates():
            self.put_updates(lease_updates)

    def reseed(self, published) -> None:
        """A takeover re-seeds the overlay stage first: its lease changes are in what is published."""
        self.tick(0.0)

    def derive(self, updates: list[Update]):
        return self.table.apply_batch([("leases" if u.alias == LEASES else self.sources[u.alias].kind, u.key, u.entity)
                                       for u in updates])

    def rejected(self, updates: list[Update], changes) -> Iterable[tuple[str, str, object]]:
        return [(f"DNS name of {r.subject}", r.why, r.value) for r in self.table.take_rejections()]

    def _lease_updates(self) -> list[Update]:
        if not self._leases_changed or self.table is None:
            return []
        taken, self._leases_changed = self._leases_changed, {}
        return [Update(LEASES, agent_id, None, obs) for agent_id, obs in taken.items()]
