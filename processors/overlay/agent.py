"""The overlay processor stage: agents in, leases out (the ``overlay`` topic). LeaseTable does
the work; `processors.stage.Stage` does the batching, publishing and rejections.

Leases are history, not a function of the agents alone (who came first got the lower
subnet), so, as named VIPs, the table starts from what the ``overlay`` topic holds, and a
processor taking over re-seeds from what the topic holds then (`reseed`).

The stage also follows its own output topic (source ``overlay``, kind ``lease``): an operator
frees a gone agent's lease by tombstoning its key there, and every processor, active or
standing by, forgets it at once (see LeaseTable). The stage's own records coming back change
nothing.

Other stages of the same processor read the leases through ``overlay_leases()`` (the DNS
stage checks container addresses against them) and hear which agents' leases changed through
``on_leases_changed``, with the observation of each change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import msgspec

from processors.dns.leases import OverlayLeases
from processors.overlay.config import OverlayConfig
from processors.overlay.table import LeaseTable
from processors.stage import Source, Stage, Update
from schemas import codec
from schemas.headers import Observation
from schemas.mesos import Agent
from schemas.overlay import Lease

SOURCES = {
    "agents": Source(Agent, "agent"),
    "overlay": Source(Lease, "lease"),
}


class OverlayStage(Stage):
    name = "overlay"
    output = "overlay"
    sources = SOURCES

    def __init__(self, catalog, config: OverlayConfig | None = None):
        super().__init__(catalog)
        self.config = config or OverlayConfig()
        # Told, after every change, agent id -> the observation of its leases' newest change.
        self.on_leases_changed: list[Callable[[Mapping[str, Observation]], None]] = []

    def overlay_leases(self) -> OverlayLeases:
        """A read-only view of the leases for other stages: always the current table's (a
        takeover may replace the table)."""
        return OverlayLeases({o.name: o.subnet for o in self.config.overlays}, self._subnets_of)

    def _subnets_of(self, agent_id: str) -> dict[str, str]:
        if self.table is None:
            return {}
        return {name: lease.subnet for name, lease in self.table.leases_of(agent_id).items()}

    def changed(self, observed: Mapping[str, Observation]) -> None:
        super().changed(observed)
        if self.on_leases_changed and observed:
            by_agent: dict[str, Observation] = {}
            for key, obs in observed.items():
                agent_id = key.partition("/")[2]
                known = by_agent.get(agent_id)
                if known is None or obs.observed_ns >= known.observed_ns:
                    by_agent[agent_id] = obs
            for listener in self.on_leases_changed:
                listener(by_agent)

    def new_table(self, published: Mapping[str, bytes]) -> LeaseTable:
        table = LeaseTable(self.config, self._leases_of(published))
        self._report(table)
        return table

    def reseed(self, published: Mapping[str, bytes]) -> None:
        """A standby leases new agents on its own, and frees on its own clock: where what it
        holds differs from what the previous active published, rebuild the table from the
        published leases (they win) and the registered agents."""
        leases = self._leases_of(published)
        table: LeaseTable = self.table
        if {(lease.overlay, lease.agent_id): _place(lease) for lease in leases} == \
                {(lease.overlay, lease.agent_id): _place(lease) for lease in table.records.values()}:
            return
        fresh = LeaseTable(self.config, leases, table.departed)
        fresh.apply_batch([("agent", agent_id, agent) for agent_id, agent in table.agents.items()])
        self.table = fresh
        self._report(fresh)
        moved = {key for key in table.records.keys() | fresh.records.keys()
                 if table.records.get(key) != fresh.records.get(key)}
        if moved and self.on_leases_changed:
            now = Observation.now()
            for listener in self.on_leases_changed:
                listener({key.partition("/")[2]: now for key in moved})

    def derive(self, updates: list[Update]):
        """A departure's ``gone_since`` is when the tombstone was observed."""
        return self.table.apply_batch([(self.sources[u.alias].kind, u.key, u.entity) for u in updates],
                                      [u.obs.observed_ns / 1e9 for u in updates])

    def tick(self, now: float) -> None:
        changes = self.table.tick(now)
        if changes:
            obs = Observation(Observation.now().trace, int(now * 1e9))
            self.changed(dict.fromkeys(changes, obs))
        self._report(self.table)

    def rejected(self, updates: list[Update], changes) -> Iterable[tuple[str, str, object]]:
        return self.table.take_refusals()

    def _report(self, table: LeaseTable) -> None:
        for what, why, raw in table.take_refusals():
            self.reject(what, why, raw)

    def _leases_of(self, published: Mapping[str, bytes]) -> list[Lease]:
        leases = []
        for key, value in published.items():
            try:
                leases.append(codec.decode(value, Lease))
            except msgspec.DecodeError as error:  # a value written by hand
                self.reject(f"overlay record {key}", f"does not match its schema ({error}): withdrawn", value)
        return leases


def _place(lease: Lease) -> tuple[str, str, str | None]:
    return lease.subnet, lease.vtep_ip, lease.vtep_ip6
