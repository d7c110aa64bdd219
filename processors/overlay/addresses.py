"""Address arithmetic of the leases (pure): the n-th subnet of an overlay, the n-th VTEP
address, the VTEP MAC, and the pools that hand out the lowest free n.

Everything is counted by index (subnet n of an overlay, VTEP address n of the range), so an
IPv6 range of 2^64 addresses costs no more than a /20.
"""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address

from processors.overlay.config import Network, Overlay

VTEP_MAC_OUI = (0x70, 0xB3, 0xD5)  # reference §4.1: vtep_mac_oui 70:B3:D5:00:00:00


class IndexPool:
    """Indexes 0..capacity-1; ``take()`` gives the lowest free one.

    ``_floor`` is below or at the lowest free index: taking walks up from it over the taken
    ones, and freeing lowers it, so a long run of takes walks the taken indexes once.
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.taken: set[int] = set()
        self._floor = 0

    def take(self) -> int | None:
        """The lowest free index, now taken; None when all are taken."""
        if len(self.taken) >= self.capacity:
            return None
        # Bounded: among len(taken) + 1 indexes from the floor one is free.
        for index in range(self._floor, min(self.capacity, self._floor + len(self.taken) + 1)):
            if index not in self.taken:
                self.taken.add(index)
                self._floor = index + 1
                return index
        raise AssertionError("a pool with room found no free index")  # the bound above makes this unreachable

    def claim(self, index: int) -> bool:
        """Take a given index (one a previous run published); False when it is out of range or taken."""
        if not 0 <= index < self.capacity or index in self.taken:
            return False
        self.taken.add(index)
        return True

    def free(self, index: int) -> None:
        if index in self.taken:
            self.taken.discard(index)
            self._floor = min(self._floor, index)


# -- overlay subnets ----------------------------------------------------------------------
def subnet_of(overlay: Overlay, index: int) -> Network:
    size = 1 << (overlay.subnet.max_prefixlen - overlay.prefix)
    return ipaddress.ip_network((int(overlay.subnet.network_address) + index * size, overlay.prefix))


def halves_of(subnet: Network) -> tuple[Network, Network]:
    """The Mesos bridge's half (the first) and the Docker bridge's (the second)."""
    first, second = subnet.subnets(prefixlen_diff=1)
    return first, second


def subnet_index(overlay: Overlay, text: str) -> int | None:
    """Which per-agent subnet of the overlay ``text`` is; None when it is not one."""
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError:
        return None
    if network.version != overlay.subnet.version or network.prefixlen != overlay.prefix \
            or not network.subnet_of(overlay.subnet):
        return None
    return (int(network.network_address) - int(overlay.subnet.network_address)) >> (network.max_prefixlen - overlay.prefix)


# -- VTEP addresses -----------------------------------------------------------------------
# Address n of a VTEP range is network + 1 + n: the network address is skipped (DC/OS's
# first VTEP is 44.128.0.1), and in IPv4 the broadcast address too.
def vtep_capacity(network: Network) -> int:
    return network.num_addresses - (2 if network.version == 4 else 1)


def vtep_address(network: Network, index: int) -> str:
    return str(ipaddress.ip_address(int(network.network_address) + 1 + index))


def vtep_index(network: Network, text: str) -> int | None:
    """Which VTEP address of the range ``text`` is; None when it is none."""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    index = int(ip) - int(network.network_address) - 1
    if ip.version != network.version or not 0 <= index < vtep_capacity(network):
        return None
    return index


def vtep_mac(ip: str) -> str:
    """OUI 70:b3:d5 and the low 24 bits of the VTEP IPv4: 44.128.0.1 -> 70:b3:d5:80:00:01."""
    low = int(IPv4Address(ip)) & 0xFFFFFF
    return ":".join(f"{octet:02x}" for octet in (*VTEP_MAC_OUI, low >> 16, (low >> 8) & 0xFF, low & 0xFF))
