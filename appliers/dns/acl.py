"""Who may use the node's DNS server as a recursive resolver. Pure.

An open forwarder is an amplification tool for anyone who can reach port 53 (every agent
binds it on routable addresses on masters), so forwarding is for the node's own clients:
loopback plus the networks the node sits on, which the caller passes as CIDRs. Everyone else
still gets the cluster names, answered authoritatively, and REFUSED for the rest.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

LOOPBACK = ("127.0.0.0/8", "::1/128")
_MEMO_LIMIT = 4096  # distinct client addresses remembered; a node has few clients


class RecursionAcl:
    def __init__(self, networks: Iterable[str]) -> None:
        """`networks`: CIDR strings ("10.0.0.0/8", "fd01:b::/64", or a bare address)."""
        self.networks = tuple(ipaddress.ip_network(text.strip(), strict=False) for text in networks)
        self._memo: dict[str, bool] = {}

    @classmethod
    def for_node(cls, node_networks: Iterable[str] = ()) -> RecursionAcl:
        """The default: loopback and the node's own networks."""
        return cls([*LOOPBACK, *node_networks])

    def allows(self, host: str) -> bool:
        """True when `host` (an address as sockets report it, IPv6 scope allowed) is inside
        one of the networks. Remembered per address: this runs on every query."""
        known = self._memo.get(host)
        if known is None:
            known = self._check(host)
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()  # a flood of sources: start over rather than grow
            self._memo[host] = known
        return known

    def _check(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.partition("%")[0])
        except ValueError:
            return False  # not an IP (a Unix socket, say): no recursion
        if address.version == 6 and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # a dual-stack socket reports IPv4 clients this way
        return any(address in network for network in self.networks if network.version == address.version)
