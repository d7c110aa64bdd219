"""The container side of one overlay lease. Pure.

- The Mesos containerizer's CNI network config: a conflist of the bridge plugin on
  ``m-<overlay>`` (the node's gateway on it, no masquerade: the node's own rule does that only
  for traffic leaving the overlay) with host-local IPAM on the first half of the lease, then
  portmap for port mappings. dcos-overlay's agent module writes the same bridge and IPAM
  (reference 4.2); it wraps them in Mesos's own port mapper instead of the portmap plugin.
- The Docker network on the second half: bridge ``d-<overlay>``, masquerade off, the overlay's
  MTU, and the `docker network create` command that makes it.
"""

from __future__ import annotations

import ipaddress
import shlex
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from schemas.overlay import Lease

CNI_VERSION = "0.4.0"
CONFIG_SUFFIX = ".conflist"


def mesos_bridge(overlay: str) -> str:
    return f"m-{overlay}"


def docker_bridge(overlay: str) -> str:
    return f"d-{overlay}"


def host_local_range(subnet: str) -> dict:
    """host-local's range for `subnet`, spelled out as host-local computes it by default:
    the first address is the network's, the next the gateway's (the bridge), and an IPv4
    range stops before the broadcast address."""
    network = ipaddress.ip_network(subnet, strict=False)
    last = network.broadcast_address - 1 if network.version == 4 else network.broadcast_address
    return {"subnet": str(network), "rangeStart": str(network.network_address + 2), "rangeEnd": str(last),
            "gateway": str(network.network_address + 1)}


def cni_config(lease: Lease) -> dict:
    """The CNI network config list of `lease`'s overlay on this node."""
    default = "::/0" if ipaddress.ip_network(lease.mesos_subnet, strict=False).version == 6 else "0.0.0.0/0"
    return {
        "cniVersion": CNI_VERSION,
        "name": lease.overlay,
        "plugins": [
            {
                "type": "bridge",
                "bridge": mesos_bridge(lease.overlay),
                "isGateway": True,
                "ipMasq": False,
                "mtu": lease.mtu,
                "ipam": {"type": "host-local", "ranges": [[host_local_range(lease.mesos_subnet)]],
                         "routes": [{"dst": default}]},
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def config_name(overlay: str) -> str:
    return f"{overlay}{CONFIG_SUFFIX}"


def config_files(leases: Iterable[Lease]) -> dict[str, bytes]:
    """File name -> content, one per lease of this node (the bytes are stable: sorted keys)."""
    return {config_name(lease.overlay): orjson.dumps(cni_config(lease), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
            + b"\n" for lease in leases}


@dataclass(frozen=True)
class DockerNetwork:
    """The Docker network of a lease's second half."""

    name: str
    bridge: str
    subnet: str
    gateway: str
    mtu: int
    ipv6: bool


def docker_network(lease: Lease) -> DockerNetwork:
    network = ipaddress.ip_network(lease.docker_subnet, strict=False)
    return DockerNetwork(lease.overlay, docker_bridge(lease.overlay), str(network), str(network.network_address + 1),
                         lease.mtu, network.version == 6)


def docker_command(network: DockerNetwork) -> list[str]:
    """`docker network create` for `network`, as an argument list."""
    argv = ["docker", "network", "create", "--driver", "bridge"]
    if network.ipv6:
        argv.append("--ipv6")
    argv += ["--subnet", network.subnet, "--gateway", network.gateway,
             "--opt", f"com.docker.network.bridge.name={network.bridge}",
             "--opt", "com.docker.network.bridge.enable_ip_masquerade=false",
             "--opt", f"com.docker.network.driver.mtu={network.mtu}",
             network.name]
    return argv


def docker_command_line(network: DockerNetwork) -> str:
    return shlex.join(docker_command(network))
