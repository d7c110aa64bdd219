"""Overlay subnets given to a simulated agent (``PUT /sim/agents/{agent id}/overlays``).

In Wayfinder's world a container's overlay address comes from its agent's lease: the node's
overlay role writes the CNI config the Mesos agent uses, and host-local hands out the lowest
free address of the lease's Mesos half. Given an agent's subnets, the simulator does the same
for the tasks it launches there (task_builder.Placement); without them, it keeps making up
overlay addresses from the agent's index.

Body: overlay name -> a subnet for every container on that overlay
(``{"dcos": "9.0.2.0/25"}``), or one subnet per containerizer
(``{"dcos": {"mesos": "9.0.2.0/25", "docker": "9.0.2.128/25"}}``). ``{}`` forgets them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

KINDS = ("mesos", "docker")
# overlay name -> containerizer ("MESOS", "DOCKER") -> subnet
AgentOverlays = dict[str, dict[str, str]]


def parse_overlays(body: object) -> AgentOverlays:
    """The body checked; a ValueError names what is wrong (the control API answers 400)."""
    if not isinstance(body, dict):
        raise ValueError('body must be a JSON object like {"dcos": "9.0.2.0/25"}')
    parsed: AgentOverlays = {}
    for name, value in body.items():
        by_kind = value if isinstance(value, dict) else dict.fromkeys(KINDS, value)
        unknown = set(by_kind) - set(KINDS)
        if unknown:
            raise ValueError(f"overlay {name}: unknown containerizer {sorted(unknown)}; expected mesos or docker")
        parsed[name] = {}
        for kind, subnet in by_kind.items():
            try:
                network = ipaddress.ip_network(subnet, strict=True)
            except (TypeError, ValueError) as problem:
                raise ValueError(f"overlay {name}: {subnet!r} is not a subnet ({problem})")
            if network.num_addresses < 4:
                raise ValueError(f"overlay {name}: {network} leaves no address for a container")
            parsed[name][kind.upper()] = str(network)
    return parsed


def host_local_addresses(subnet: str) -> Iterator[str]:
    """host-local's order on ``subnet``: from the address after the gateway (network + 1) up
    to the last one before an IPv4 broadcast address, as the overlay role's CNI config asks."""
    network = ipaddress.ip_network(subnet)
    last = int(network.broadcast_address) - (1 if network.version == 4 else 0)
    first = int(network.network_address) + 2
    return (str(ipaddress.ip_address(n)) for n in range(first, last + 1))
