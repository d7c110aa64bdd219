"""Overlay addresses a task may be published with: those inside its agent's lease (pure).

On an overlay, a container's address comes from the CNI config the agent's overlay role wrote
from the agent's lease (appliers/overlay/cni.py), so an address inside a configured overlay's
network but outside the lease of the task's agent cannot be that container's: a stale status,
a task launched before its agent's lease moved, or a misconfigured agent. Routing sends such
an address to whichever agent really holds it, so a name pointing there would lead to another
container or nowhere. Neither Mesos-DNS nor dcos-dns checks this (both publish whatever the
task's status reports); Wayfinder leaves the address out and reports it.

Addresses outside every configured overlay (a Docker bridge, a host network, another CNI
network) are not checked: nothing leases them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network

from processors.dns.sources import Address

Network = IPv4Network | IPv6Network
# Agent id -> overlay name -> the subnet the agent leases of it (``9.0.3.0/24``).
SubnetsOf = Callable[[str], Mapping[str, str]]
Refuse = Callable[[str, str], None]  # (refused value, why): Collector.reject
OVERLAY_CACHE = 1 << 16  # addresses whose overlay is remembered (they repeat at every re-derivation)


@dataclass(frozen=True, eq=False)
class OverlayLeases:
    """A read-only view of the overlay stage's leases, as the DNS derivation needs it: the
    configured overlays' networks (by name) and each agent's leased subnets, looked up when
    a task is derived (the lease table stays the overlay stage's)."""

    networks: Mapping[str, Network]
    subnets_of: SubnetsOf
    _overlay_of: dict[str, str | None] = field(default_factory=dict, repr=False)

    def overlay_of(self, ip: str) -> str | None:
        """The configured overlay whose network holds ``ip`` (canonical text), if any."""
        try:
            return self._overlay_of[ip]
        except KeyError:
            pass
        parsed = ipaddress.ip_address(ip)
        found = next((name for name, network in self.networks.items()
                      if network.version == parsed.version and parsed in network), None)
        if len(self._overlay_of) >= OVERLAY_CACHE:
            self._overlay_of.clear()
        self._overlay_of[ip] = found
        return found

    def keeper(self, agent_id: str, refuse: Refuse) -> Callable[[list[Address]], list[Address]]:
        """A filter of one task's container addresses: those inside a configured overlay but
        outside the agent's lease of it are dropped, each refused through ``refuse``."""
        leased: dict[str, Network] | None = None

        def keep(addresses: list[Address]) -> list[Address]:
            nonlocal leased
            kept = []
            for found in addresses:
                overlay = self.overlay_of(found[0])
                if overlay is None:
                    kept.append(found)
                    continue
                if leased is None:  # looked up only for a task that has an overlay address
                    leased = {name: ipaddress.ip_network(subnet) for name, subnet in self.subnets_of(agent_id).items()}
                subnet = leased.get(overlay)
                if subnet is not None and ipaddress.ip_address(found[0]) in subnet:
                    kept.append(found)
                elif subnet is None:
                    refuse(found[0], f"address in overlay {overlay} ({self.networks[overlay]}), whose agent {agent_id} "
                                     "holds no lease of it: no names with this address")
                else:
                    refuse(found[0], f"address in overlay {overlay} ({self.networks[overlay]}) but outside agent "
                                     f"{agent_id}'s lease {subnet}: no names with this address")
            return kept

        return keep
