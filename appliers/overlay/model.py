"""What this node's kernel should hold for the overlay, derived from every lease. Pure.

One VXLAN device per node (``vtep1024``), shared by every overlay: its VTEP comes from this
node's own leases (found by the agent IP). Per remote agent, what dcos-net programs
(reference dcos-networking.md 4.3): the neighbour of its VTEP IP (and VTEP IPv6), the FDB
entry that sends its MAC to its agent IP, the route to each of its subnets via its VTEP, and
the table-42 route to its agent IP. The rule sends traffic from the overlay's network to
table 42 (``from 9.0.0.0/8 lookup 42``, as dcos-net); and masquerade covers traffic from this
node's subnets whose destination lies outside every overlay network. Both name the overlay's
whole network (the lease's ``network``), so peers coming and going never touch them; a lease
from a processor that predates ``network`` stands for its agent's subnet instead.

The same `NodeState` type is what the kernel seam reads back, so plan.py compares like with like.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from schemas.overlay import VNI, VTEP_NAME, VXLAN_PORT, Lease

OVERLAY_TABLE = 42  # dcos-net's routing table for traffic from the overlay to agent IPs
MAIN_TABLE = 254
VTEP_MTU = 1500  # DC/OS's default VTEP MTU; containers use the lease's (1420) inside it


@dataclass(frozen=True)
class Vtep:
    """The VXLAN device. ``local`` is the agent IP the tunnel is sent from."""

    local: str
    mac: str
    mtu: int = VTEP_MTU
    up: bool = True
    name: str = VTEP_NAME
    vni: int = VNI
    port: int = VXLAN_PORT
    learning: bool = True

    def same_tunnel(self, other: Vtep) -> bool:
        """Whether `other` is the same tunnel: what cannot change without recreating the device."""
        return (self.name, self.vni, self.port, self.local, self.learning) == \
            (other.name, other.vni, other.port, other.local, other.learning)


@dataclass(frozen=True)
class Nat:
    """Masquerade traffic from ``sources`` (this node's subnets) whose destination lies in
    none of ``overlay`` (the overlay networks; see `overlay_entry`)."""

    sources: frozenset[str]
    overlay: frozenset[str]
    intact: bool = True  # read back: False when the table's chain or rules are not exactly ours


@dataclass(frozen=True)
class NodeState:
    """The overlay's part of one node's kernel: desired (from leases) or actual (read back)."""

    vtep: Vtep | None = None
    addresses: frozenset[str] = frozenset()  # CIDRs on the VTEP ("44.128.0.1/20")
    neighbours: dict[str, str] = field(default_factory=dict)  # VTEP IP -> MAC, permanent
    fdb: dict[str, str] = field(default_factory=dict)  # MAC -> agent IP, self permanent
    routes: dict[tuple[int, str], str] = field(default_factory=dict)  # (table, dst CIDR) -> via
    rules: frozenset[tuple[str, int]] = frozenset()  # (from CIDR, table)
    nat: Nat | None = None


@functools.lru_cache(maxsize=1 << 16)  # every lease names its overlay's network: a few distinct values
def network_of(cidr: str) -> str:
    return str(ipaddress.ip_network(cidr, strict=False))


def overlay_entry(lease: Lease) -> str:
    """What a lease puts in the masquerade's overlay set: its overlay's whole network, or, from
    a processor that predates the field, its agent's subnet."""
    return network_of(lease.network or lease.subnet)


def overlay_network(lease: Lease) -> str | None:
    """The lease's overlay network, None from a processor that predates the field."""
    return network_of(lease.network) if lease.network else None


def legacy_subnet(lease: Lease) -> str | None:
    """The agent's subnet when the lease stands for it alone (no ``network``), else None."""
    return None if lease.network else network_of(lease.subnet)


def without_covered(cidrs: Iterable[str]) -> frozenset[str]:
    """The networks that no other one of them contains: an interval set refuses overlapping
    elements, and a subnet inside a listed network adds nothing to it. Adjacent networks stay
    apart (merged, they would read back as another element than the one planned)."""
    networks = sorted({ipaddress.ip_network(cidr, strict=False) for cidr in cidrs},
                      key=lambda n: (n.version, n.network_address, n.prefixlen))
    kept: list = []
    # Two prefixes nest or are apart, and a container sorts before what it contains: a network
    # is covered exactly when the last one kept contains it.
    for network in networks:
        if not (kept and kept[-1].version == network.version and network.subnet_of(kept[-1])):
            kept.append(network)
    return frozenset(str(n) for n in kept)


def covered_by(cidr: str, networks: Iterable[str]) -> bool:
    """Whether one of `networks` (other than `cidr` itself) contains `cidr`."""
    network = ipaddress.ip_network(cidr, strict=False)
    return any(other != network and other.version == network.version and network.subnet_of(other)
               for other in map(ipaddress.ip_network, networks))


def _host(ip: str) -> str:
    address = ipaddress.ip_address(ip)
    return f"{address}/{address.max_prefixlen}"


def own_leases(leases: Iterable[Lease], agent_ip: str) -> list[Lease]:
    """This node's leases: those of its agent IP. Should an old agent id (gone) and a new one
    share the IP, the live agent's leases win."""
    mine = [lease for lease in leases if lease.agent_ip == agent_ip]
    agents = sorted({(lease.gone_since is not None, lease.agent_id) for lease in mine})
    if not agents:
        return []
    chosen = agents[0][1]
    return sorted((lease for lease in mine if lease.agent_id == chosen), key=lambda lease: lease.overlay)


def peers(leases: Iterable[Lease], agent_ip: str) -> dict[str, list[Lease]]:
    """Every other agent's leases by agent id, each list sorted by overlay. An agent on this
    node's own IP is never a peer (its routes would point at ourselves)."""
    out: dict[str, list[Lease]] = {}
    for lease in sorted(leases, key=lambda lease: (lease.agent_id, lease.overlay)):
        if lease.agent_ip != agent_ip:
            out.setdefault(lease.agent_id, []).append(lease)
    return out


@dataclass(frozen=True)
class PeerEntries:
    """What one peer asks of this node's kernel. Two peers may ask for the same entry (a VTEP
    IP freed by one and leased to the other): the first by agent id wins, in desired_state and
    in LeaseIndex alike."""

    neighbours: dict[str, str]
    fdb: dict[str, str]
    routes: dict[tuple[int, str], str]


def peer_entries(agent_leases: list[Lease]) -> PeerEntries:
    """One peer's entries, from its leases sorted by overlay (the first carries its VTEP).
    Remembered per leases: a full pass (every resync) derives every peer's entries twice
    (desired_state, LeaseIndex.rebuild), ~0.1 ms each in address parsing, the same as last time
    but for the peers that changed. The entries are never changed by their users."""
    return _peer_entries(tuple(agent_leases))


@functools.lru_cache(maxsize=1 << 16)
def _peer_entries(agent_leases: tuple[Lease, ...]) -> PeerEntries:
    peer = agent_leases[0]
    mac = peer.vtep_mac.lower()
    neighbours = {peer.vtep_ip: mac}
    if peer.vtep_ip6:
        neighbours.setdefault(str(ipaddress.ip_address(peer.vtep_ip6)), mac)
    fdb: dict[str, str] = {}
    routes: dict[tuple[int, str], str] = {}
    if ipaddress.ip_address(peer.agent_ip).version == 4:
        fdb[mac] = peer.agent_ip
        routes[(OVERLAY_TABLE, _host(peer.agent_ip))] = peer.vtep_ip
    for lease in agent_leases:
        subnet = ipaddress.ip_network(lease.subnet, strict=False)
        via = peer.vtep_ip if subnet.version == 4 else peer.vtep_ip6
        if via:  # an IPv6 subnet needs the peer's IPv6 VTEP
            routes.setdefault((MAIN_TABLE, str(subnet)), str(ipaddress.ip_address(via)))
    return PeerEntries(neighbours, fdb, routes)


def desired_state(leases: Iterable[Lease], agent_ip: str, vtep_mtu: int = VTEP_MTU) -> NodeState:
    """The kernel state this node should have. Without a lease of its own the node has no
    VTEP, hence nothing to reach its peers with: the state is empty."""
    leases = list(leases)
    mine = own_leases(leases, agent_ip)
    if not mine:
        return NodeState()
    first = mine[0]  # every lease of an agent repeats the same VTEP
    vtep = Vtep(local=agent_ip, mac=first.vtep_mac.lower(), mtu=vtep_mtu)
    addresses = {f"{first.vtep_ip}/{first.vtep_prefix}"}
    if first.vtep_ip6 and first.vtep_prefix6 is not None:
        addresses.add(f"{ipaddress.ip_address(first.vtep_ip6)}/{first.vtep_prefix6}")
    neighbours: dict[str, str] = {}
    fdb: dict[str, str] = {}
    routes: dict[tuple[int, str], str] = {}
    for agent_leases in peers(leases, agent_ip).values():
        entries = peer_entries(agent_leases)
        for key, value in entries.neighbours.items():
            neighbours.setdefault(key, value)
        for key, value in entries.fdb.items():
            fdb.setdefault(key, value)
        for key, value in entries.routes.items():
            routes.setdefault(key, value)
    own_subnets = {network_of(lease.subnet) for lease in mine}
    # One rule per overlay this node is on, IPv4 only as dcos-net's.
    rules = frozenset((overlay_entry(lease), OVERLAY_TABLE) for lease in mine
                      if ipaddress.ip_network(lease.subnet, strict=False).version == 4)
    nat = Nat(frozenset(own_subnets), without_covered({overlay_entry(lease) for lease in leases}))
    return NodeState(vtep, frozenset(addresses), neighbours, fdb, routes, rules, nat)
