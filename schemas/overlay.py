"""Overlay leases: which subnet of which overlay network each agent holds, and its VTEP.

What Navstar/dcos-overlay kept in the Mesos master's replicated log, derived here in the
stream: every agent gets, per overlay, the lowest free subnet of the overlay's per-agent
prefix, split in halves for the Mesos (CNI bridge ``m-<overlay>``) and Docker (``d-<overlay>``)
containers. Every agent has one VXLAN device (``vtep1024``, VNI 1024, UDP 64000) with one
VTEP IPv4 address (and one IPv6) and a MAC derived from the IPv4 address as DC/OS derives it
(OUI 70:b3:d5 + the address's low 24 bits); the lease repeats them so a node needs nothing
but the lease of each peer to program it.
"""

from __future__ import annotations

from msgspec import Struct

VNI = 1024
VTEP_NAME = "vtep1024"
VXLAN_PORT = 64000
OVERLAY_MTU = 1420


class Lease(Struct, frozen=True, gc=False):
    """One agent's share of one overlay. Key: ``<overlay>/<agent id>`` (see ``lease_key``).

    ``subnet`` is the agent's whole share (``9.0.3.0/24``; ``fd01:b:0:0:3::/80`` on an IPv6
    overlay); ``mesos_subnet`` and ``docker_subnet`` its first and second halves. ``vtep_ip``
    (with ``vtep_prefix``, the VTEP range's length) and ``vtep_mac`` are the agent's VTEP;
    ``vtep_ip6`` its IPv6 VTEP address when an IPv6 VTEP range is configured.
    ``gone_since``: the agent left the cluster at this time (seconds since the epoch); the
    lease is kept, unchanged otherwise, until the grace period after it ends.
    ``network``: the overlay's whole network (``9.0.0.0/8``), which every agent's ``subnet`` is
    part of: a node masquerades what leaves it and sends what comes from it to table 42, as
    DC/OS does, without a rule or set element per peer. None in a lease from a processor that
    predates the field: a node then falls back to the agents' subnets.
    """

    overlay: str
    agent_id: str
    agent_ip: str
    subnet: str
    mesos_subnet: str
    docker_subnet: str
    vtep_ip: str
    vtep_prefix: int
    vtep_mac: str
    mtu: int = OVERLAY_MTU
    vtep_ip6: str | None = None
    vtep_prefix6: int | None = None
    gone_since: float | None = None
    network: str | None = None  # last: records written before it decode unchanged


def lease_key(overlay: str, agent_id: str) -> str:
    return f"{overlay}/{agent_id}"
