"""The overlay networks the processor leases subnets of, and the VTEP ranges (pure).

Command line syntax (reference §4.1 gives DC/OS's defaults):

- ``--overlay NAME=SUBNET,PREFIX``: ``dcos=9.0.0.0/8,24`` leases a /24 of 9.0.0.0/8 to each
  agent. The comma keeps the per-agent prefix apart from the subnet's own ``/8``, which
  ``NAME=SUBNET/PREFIX`` would leave ambiguous to read (``9.0.0.0/8/24``).
- ``--overlay-vtep 44.128.0.0/20`` and ``--overlay-vtep6 fd01:a::/64``: where each agent's
  VTEP addresses come from.
- ``--overlay-grace 600``: seconds a gone agent keeps its leases.

Every rule is checked here, so a bad configuration stops the processor with a clear
ValueError instead of publishing leases no node can program.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network

Network = IPv4Network | IPv6Network

# Linux interface names hold 15 characters; the bridges are ``m-<name>`` and ``d-<name>``,
# and DC/OS keeps names under 13 characters (reference §4.1).
NAME = re.compile(r"[a-z0-9-]{1,12}")
# Each half of an agent's subnet holds a bridge: its network and broadcast address, the
# bridge's gateway and at least one container, so a half is at least 4 addresses.
HALF_ADDRESSES = 4
# The VTEP MAC carries the low 24 bits of the VTEP IPv4: a wider range would repeat MACs.
WIDEST_VTEP_PREFIX = 8
DEFAULT_GRACE_S = 600.0


@dataclass(frozen=True)
class Overlay:
    """One overlay network: ``subnet`` split into per-agent subnets of ``prefix`` bits."""

    name: str
    subnet: Network
    prefix: int

    @property
    def capacity(self) -> int:
        """How many agents it holds."""
        return 1 << (self.prefix - self.subnet.prefixlen)

    def spec(self) -> str:
        return f"{self.name}={self.subnet},{self.prefix}"


def parse_network(text: str, what: str) -> Network:
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as error:
        raise ValueError(f"{what}: {text!r} is not a network address with its prefix length ({error})") from None


def overlay(name: str, subnet: str, prefix: int | str) -> Overlay:
    """One validated overlay."""
    if not NAME.fullmatch(name):
        raise ValueError(f"overlay name {name!r}: 1 to 12 characters of a-z, 0-9 and '-' (the bridges "
                         f"m-<name> and d-<name> must fit a 15-character interface name)")
    network = parse_network(subnet, f"overlay {name}")
    try:
        bits = int(prefix)
    except ValueError:
        raise ValueError(f"overlay {name}: the per-agent prefix {prefix!r} is not a number") from None
    if bits <= network.prefixlen:
        raise ValueError(f"overlay {name}: the per-agent prefix /{bits} must be longer than the subnet's "
                         f"/{network.prefixlen}")
    if 1 << (network.max_prefixlen - bits - 1) < HALF_ADDRESSES:
        raise ValueError(f"overlay {name}: a /{bits} per agent leaves no room for two bridges (each half needs "
                         f"{HALF_ADDRESSES} addresses: at most /{network.max_prefixlen - 3})")
    return Overlay(name, network, bits)


def parse_overlay(text: str) -> Overlay:
    """``NAME=SUBNET,PREFIX``, e.g. ``dcos=9.0.0.0/8,24``."""
    name, equals, rest = text.partition("=")
    subnet, comma, prefix = rest.partition(",")
    if not equals or not comma or not subnet or not prefix:
        raise ValueError(f"--overlay {text!r}: expected NAME=SUBNET,PREFIX, e.g. dcos=9.0.0.0/8,24")
    return overlay(name.strip(), subnet, prefix.strip())


DEFAULT_OVERLAYS = (overlay("dcos", "9.0.0.0/8", 24), overlay("dcos6", "fd01:b::/64", 80))
DEFAULT_VTEP = "44.128.0.0/20"
DEFAULT_VTEP6 = "fd01:a::/64"


@dataclass(frozen=True)
class OverlayConfig:
    overlays: tuple[Overlay, ...] = DEFAULT_OVERLAYS
    vtep: IPv4Network = field(default_factory=lambda: IPv4Network(DEFAULT_VTEP))
    vtep6: IPv6Network | None = field(default_factory=lambda: IPv6Network(DEFAULT_VTEP6))
    grace_s: float = DEFAULT_GRACE_S

    def __post_init__(self) -> None:
        check(self)

    def by_name(self) -> dict[str, Overlay]:
        return {o.name: o for o in self.overlays}


def check(config: OverlayConfig) -> None:
    """Every rule that spans the overlays and the VTEP ranges."""
    names = [o.name for o in config.overlays]
    if len(set(names)) != len(names):
        raise ValueError(f"overlay names must differ: {', '.join(sorted(names))}")
    if config.vtep.version != 4:
        raise ValueError(f"--overlay-vtep {config.vtep}: the VTEP range is IPv4 (IPv6 goes to --overlay-vtep6)")
    if config.vtep.prefixlen < WIDEST_VTEP_PREFIX or config.vtep.num_addresses < 4:
        raise ValueError(f"--overlay-vtep {config.vtep}: a VTEP range is /{WIDEST_VTEP_PREFIX} to /30 (its low 24 bits "
                         f"make each VTEP's MAC, and it needs a host address)")
    if config.vtep6 is not None and config.vtep6.version != 6:
        raise ValueError(f"--overlay-vtep6 {config.vtep6}: not an IPv6 range")
    if config.vtep6 is not None and config.vtep6.num_addresses < 2:
        raise ValueError(f"--overlay-vtep6 {config.vtep6}: no address left after the network address")
    if config.grace_s < 0:
        raise ValueError(f"--overlay-grace {config.grace_s}: a grace period is 0 seconds or more")
    ranges = [(f"overlay {o.name}", o.subnet) for o in config.overlays]
    ranges += [("the VTEP range", config.vtep)] + ([("the IPv6 VTEP range", config.vtep6)] if config.vtep6 else [])
    for index, (what, network) in enumerate(ranges):
        for other, taken in ranges[:index]:
            if network.version == taken.version and network.overlaps(taken):
                raise ValueError(f"{what} ({network}) overlaps {other} ({taken})")
    for o in config.overlays:
        if o.subnet.version == 6 and config.vtep6 is None:
            raise ValueError(f"overlay {o.name} is IPv6 ({o.subnet}): it needs an IPv6 VTEP range (--overlay-vtep6)")


def parse_config(overlays: list[str] | tuple[str, ...] = (), vtep: str = DEFAULT_VTEP, vtep6: str | None = DEFAULT_VTEP6,
                 grace_s: float = DEFAULT_GRACE_S) -> OverlayConfig:
    """The configuration from command line values; no ``--overlay``: DC/OS's two overlays.
    ``vtep6`` empty or None: no IPv6 VTEP (and so no IPv6 overlay)."""
    parsed = tuple(parse_overlay(text) for text in overlays) if overlays else DEFAULT_OVERLAYS
    v4 = parse_network(vtep, "--overlay-vtep")
    v6 = parse_network(vtep6, "--overlay-vtep6") if vtep6 else None
    if v4.version != 4:
        raise ValueError(f"--overlay-vtep {vtep}: the VTEP range is IPv4 (IPv6 goes to --overlay-vtep6)")
    if v6 is not None and v6.version != 6:
        raise ValueError(f"--overlay-vtep6 {vtep6}: not an IPv6 range")
    return OverlayConfig(parsed, v4, v6, float(grace_s))
