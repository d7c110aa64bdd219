"""The lease table indexed by the kernel entries it asks for, so that a pass over a few changed
leases can name the entries they touch and what each of them should hold, without deriving the
whole node state (O(peers)). Pure: no I/O.

A peer's entries may be asked for by another peer too (a VTEP IP freed by one agent and leased
to the next): every entry keeps the set of agents claiming it, and the first by agent id wins,
exactly as `desired_state` decides.

The masquerade's overlay set holds the overlay networks (the leases' ``network``), which a peer
coming or going does not change: a partial pass touches only the subnets of leases without
``network`` (from an older processor). A change of the set of networks itself (the first lease
of an overlay, a processor upgrade) takes a full pass (`changes_networks`).
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from appliers.overlay.model import MAIN_TABLE, Nat, NodeState, PeerEntries, covered_by, legacy_subnet, overlay_network, peer_entries
from schemas.overlay import Lease


@dataclass(frozen=True)
class Touched:
    """The kernel entries a pass over some changed leases may have to change: every entry their
    agents asked for before the change, and every entry they ask for after it."""

    neighbours: frozenset[str] = frozenset()  # VTEP IPs
    fdb: frozenset[str] = frozenset()  # MACs
    routes: frozenset[tuple[int, str]] = frozenset()  # (table, dst)
    overlay: frozenset[str] = frozenset()  # subnets of leases without `network`: overlay-set elements


class LeaseIndex:
    def __init__(self, agent_ip: str) -> None:
        self.agent_ip = agent_ip
        self._clear()

    def _clear(self) -> None:
        self.leases: dict[str, Lease] = {}  # the table as of the last pass, by topic key
        self._peer_leases: dict[str, dict[str, Lease]] = {}  # peer agent id -> overlay -> lease
        self._entries: dict[str, PeerEntries] = {}  # peer agent id -> what it asks for
        self._claims: dict[tuple[str, object], set[str]] = {}  # (kind, entry key) -> agent ids asking
        self._networks: Counter[str] = Counter()  # overlay network -> how many leases name it
        self._legacy: Counter[str] = Counter()  # subnet of a lease without `network` -> how many

    def rebuild(self, table: Mapping[str, Lease]) -> None:
        self._clear()
        self.update(table.keys(), table)

    def only_peers(self, keys: Iterable[str], table: Mapping[str, Lease]) -> bool:
        """Whether the changed keys concern peers only: no lease of this node's agent IP, before
        or after. A change of the node's own lease changes its VTEP, rule and masquerade
        sources, and which agent is this node: that takes a full pass."""
        return all(lease is None or lease.agent_ip != self.agent_ip
                   for key in keys for lease in (self.leases.get(key), table.get(key)))

    def touched(self, keys: Iterable[str], table: Mapping[str, Lease]) -> Touched:
        """The entries the changed keys touch, before and after the change (the index is not
        changed: `update` does that once the pass plans)."""
        keys = list(keys)
        neighbours: set[str] = set()
        fdb: set[str] = set()
        routes: set[tuple[int, str]] = set()
        overlay: set[str] = set()
        for agent, after in self._peers_after(keys, table).items():
            for entries in (self._entries.get(agent), self._derive(after)):
                if entries is not None:
                    neighbours |= entries.neighbours.keys()
                    fdb |= entries.fdb.keys()
                    routes |= entries.routes.keys()
        for key in keys:
            for lease in (self.leases.get(key), table.get(key)):
                if lease is not None and (subnet := legacy_subnet(lease)) is not None:
                    overlay.add(subnet)
        return Touched(frozenset(neighbours), frozenset(fdb), frozenset(routes), frozenset(overlay))

    def update(self, keys: Iterable[str], table: Mapping[str, Lease]) -> None:
        keys = list(keys)
        after = self._peers_after(keys, table)
        for key in keys:
            old, new = self.leases.pop(key, None), table.get(key)
            if old is not None:
                _count(self._networks, overlay_network(old), -1)
                _count(self._legacy, legacy_subnet(old), -1)
            if new is not None:
                self.leases[key] = new
                _count(self._networks, overlay_network(new), 1)
                _count(self._legacy, legacy_subnet(new), 1)
        for agent, leases in after.items():
            self._claim(agent, self._entries.pop(agent, None), False)
            self._peer_leases.pop(agent, None)
            if leases:
                self._peer_leases[agent] = leases
                self._entries[agent] = entries = self._derive(leases)
                self._claim(agent, entries, True)

    def desired(self, touched: Touched) -> NodeState:
        """What the touched entries should hold (the others are not in the state)."""
        def winner(kind: str, key: object) -> PeerEntries | None:
            agents = self._claims.get((kind, key))
            return self._entries[min(agents)] if agents else None

        neighbours = {ip: found.neighbours[ip] for ip in touched.neighbours if (found := winner("n", ip))}
        fdb = {mac: found.fdb[mac] for mac in touched.fdb if (found := winner("f", mac))}
        routes = {key: found.routes[key] for key in touched.routes if (found := winner("r", key))}
        overlay = frozenset(subnet for subnet in touched.overlay
                            if self._legacy.get(subnet) and not covered_by(subnet, self._networks))
        return NodeState(neighbours=neighbours, fdb=fdb, routes=routes, nat=Nat(frozenset(), overlay))

    def main_route(self, key: str) -> tuple[str, str] | None:
        """(destination, gateway) of the main-table route the lease under `key` asks for, as of
        the last pass planned (None: no such lease, this node's own, or no route). After that
        pass applied, the kernel holds it: a bench or a check reads applied state here."""
        lease = self.leases.get(key)
        if lease is None or lease.agent_ip == self.agent_ip:
            return None
        entries = self._entries.get(lease.agent_id)
        dst = str(ipaddress.ip_network(lease.subnet, strict=False))
        via = entries.routes.get((MAIN_TABLE, dst)) if entries else None
        return (dst, via) if via else None

    def changes_networks(self, keys: Iterable[str], table: Mapping[str, Lease]) -> bool:
        """Whether taking the changed keys adds or removes an overlay network: then the rule and
        which legacy subnets the networks cover change too, which only a full pass plans."""
        after = Counter(self._networks)  # a handful of networks: cheap to copy
        for key in keys:
            for lease, step in ((self.leases.get(key), -1), (table.get(key), 1)):
                if lease is not None:
                    _count(after, overlay_network(lease), step)
        return after.keys() != self._networks.keys()

    def _peers_after(self, keys: list[str], table: Mapping[str, Lease]) -> dict[str, dict[str, Lease]]:
        """Each agent of the changed keys: its peer leases once the change is taken (by overlay)."""
        after: dict[str, dict[str, Lease]] = {}
        for key in keys:
            for lease in (self.leases.get(key), table.get(key)):
                if lease is not None and lease.agent_id not in after:
                    after[lease.agent_id] = dict(self._peer_leases.get(lease.agent_id, {}))
        for key in keys:
            old, new = self.leases.get(key), table.get(key)
            if old is not None:
                after[old.agent_id].pop(old.overlay, None)
            if new is not None and new.agent_ip != self.agent_ip:
                after[new.agent_id][new.overlay] = new
        return after

    @staticmethod
    def _derive(leases: Mapping[str, Lease]) -> PeerEntries | None:
        return peer_entries([leases[overlay] for overlay in sorted(leases)]) if leases else None

    def _claim(self, agent: str, entries: PeerEntries | None, claim: bool) -> None:
        if entries is None:
            return
        keys = [("n", ip) for ip in entries.neighbours] + [("f", mac) for mac in entries.fdb] + \
            [("r", key) for key in entries.routes]
        for key in keys:
            if claim:
                self._claims.setdefault(key, set()).add(agent)
            else:
                agents = self._claims.get(key, set())
                agents.discard(agent)
                if not agents:
                    self._claims.pop(key, None)


def _count(counter: Counter[str], key: str | None, step: int) -> None:
    """Count `key` (None: nothing) up or down, forgetting it at zero."""
    if key is None:
        return
    counter[key] += step
    if counter[key] <= 0:
        del counter[key]
