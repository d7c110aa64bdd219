"""What a Mesos agent's containerizer does with the overlay role's CNI config, for the demo and
the kernel tests: agents as network namespaces on one underlay bridge, and containers attached
by running the real CNI plugins (Debian's containernetworking-plugins) as a CNI runtime does.

Mesos cannot run here; these are its stand-ins, like the rest of the simulator."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from simulator.hosts import sh

CNI_DIRS = ("/usr/lib/cni", "/usr/libexec/cni", "/opt/cni/bin")
CNI_PLUGINS = ("bridge", "host-local", "portmap")


def cni_bin() -> str | None:
    """The directory holding the CNI plugins the overlay's config names, or None."""
    for directory in CNI_DIRS:
        if all(os.access(f"{directory}/{plugin}", os.X_OK) for plugin in CNI_PLUGINS):
            return directory
    return None


def build_underlay(underlay: str, agents: dict[str, str]) -> None:
    """A bridge `br0` in namespace `underlay`, and each agent namespace (name -> its IPv4)
    joined to it by a veth pair whose agent end is `eth0` with that address (/24)."""
    sh("ip", "-n", underlay, "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", underlay, "link", "set", "br0", "up")
    for n, (agent, ip) in enumerate(agents.items(), start=1):
        sh("ip", "-n", underlay, "link", "add", f"u{n}", "type", "veth", "peer", "name", "eth0", "netns", agent)
        sh("ip", "-n", underlay, "link", "set", f"u{n}", "master", "br0", "up")
        sh("ip", "-n", agent, "addr", "add", f"{ip}/24", "dev", "eth0")
        sh("ip", "-n", agent, "link", "set", "eth0", "up")


def attach(conflist: dict, agent: str, container: str, container_id: str, ipam_dir: Path, cni: str) -> str:
    """Run every plugin of `conflist` with CNI_COMMAND=ADD for the container namespace
    `container`, inside the agent's namespace (where its bridge lives), chaining each result
    into the next plugin as a CNI runtime does; host-local keeps its leases in `ipam_dir`.
    Returns the container's IP."""
    result = None
    for plugin in conflist["plugins"]:
        config = {**plugin, "name": conflist["name"], "cniVersion": conflist["cniVersion"]}
        if "ipam" in config:
            config["ipam"] = {**config["ipam"], "dataDir": str(ipam_dir)}
        if result is not None:
            config["prevResult"] = result
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CNI_COMMAND": "ADD", "CNI_CONTAINERID": container_id,
               "CNI_NETNS": f"/var/run/netns/{container}", "CNI_IFNAME": "eth0", "CNI_PATH": cni}
        done = subprocess.run(["ip", "netns", "exec", agent, f"{cni}/{plugin['type']}"],
                              input=json.dumps(config), capture_output=True, text=True, env=env, timeout=30)
        if done.returncode:
            raise RuntimeError(f"CNI {plugin['type']} ADD failed: {done.stdout} {done.stderr}")
        result = json.loads(done.stdout)
    return result["ips"][0]["address"].split("/")[0]
