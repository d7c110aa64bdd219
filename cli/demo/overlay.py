"""The overlay part of the demo: two agents in network namespaces joined by an underlay
bridge, each running `wayfinder node --roles overlay` (the first also `dns`), a "container" on
each (a namespace attached with the real CNI bridge plugin, from the config the agent's node
wrote), and two apps launched in the simulator on the `dcos` overlay whose tasks report those
containers' addresses: the simulator hands out the agents' leased subnets as host-local does
(PUT /sim/agents/{id}/overlays). A client in the first container finds the server by its
`autoip` name through the node's DNS, and talks to it over VXLAN; one line per exchange.

Needs root, iproute2, VXLAN and the CNI plugins; the demo skips this part otherwise and says
why. Every namespace it made is deleted when it stops.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import orjson

from appliers.node import Node, NodeOptions
from cli.demo.lines import say
from cli.demo.network import delete_at_forced_exit, report_names, resolve, set_or_stopped
from cli.running import at_forced_exit
from runtime.kafka.reader import read_table
from runtime.blocking import sleep_or_stop
from schemas.catalog import Catalog
from simulator.containers import CNI_DIRS, attach, build_underlay, cni_bin
from simulator.hosts import sh, socket_in

AGENT_IPS = {1: "10.98.0.1", 2: "10.98.0.2"}  # the underlay: not the VIP demo's 10.200.0.0/16
PORT = 7000
OVERLAY = "dcos"
SERVER_APP = {"id": "/overlay/server", "instances": 1, "networks": [{"mode": "container", "name": OVERLAY}],
              "container": {"type": "MESOS"}, "constraints": [["hostname", "CLUSTER", AGENT_IPS[2]]]}
CLIENT_APP = {"id": "/overlay/client", "instances": 1, "networks": [{"mode": "container", "name": OVERLAY}],
              "container": {"type": "MESOS"}, "constraints": [["hostname", "CLUSTER", AGENT_IPS[1]]]}
SERVER_NAME = "server-overlay.marathon.autoip.dcos.thisdcos.directory"
SERVER_SHORT = SERVER_NAME.split(".", 1)[0]
CLIENT_NAME = "client-overlay.marathon.containerip.dcos.thisdcos.directory"
WAIT_S = 120.0  # for the leases, the nodes and the names; the demo goes on without this part after


def why_not() -> str | None:
    if os.geteuid() != 0:
        return "it needs root for network namespaces"
    if shutil.which("ip") is None:
        return "it needs the ip command (Debian package iproute2)"
    if cni_bin() is None:
        return f"it needs the CNI bridge, host-local and portmap plugins in one of {', '.join(CNI_DIRS)} " \
               "(Debian package containernetworking-plugins)"
    probe = f"wf-probe-{secrets.token_hex(3)}"
    sh("ip", "netns", "add", probe)
    try:
        made = subprocess.run(["ip", "-n", probe, "link", "add", "vx0", "type", "vxlan", "id", "1", "dstport", "4789"],
                              capture_output=True, timeout=10)
        return "it needs VXLAN devices (kernel module vxlan)" if made.returncode else None
    finally:
        sh("ip", "netns", "del", probe, check=False)


class OverlayDemo:
    def __init__(self, bootstrap: str, catalog: Catalog):
        self.bootstrap, self.catalog = bootstrap, catalog
        self.prefix = f"wf-ov-{secrets.token_hex(2)}-"
        self.work = Path(tempfile.mkdtemp(prefix="wayfinder-overlay-demo-"))
        self.namespaces: list[str] = []
        self.making = threading.Lock()  # held while a namespace is made
        self.nodes = {n: Node(NodeOptions(bootstrap=bootstrap, catalog=catalog, node_id=f"overlay-a{n}", agent_ip=ip,
                                          roles=("overlay", "dns") if n == 1 else ("overlay",), netns=self.ns(f"a{n}"),
                                          overlay_dir=str(self.work / f"cni-a{n}"), dns_listen=("127.0.0.1", 0)))
                      for n, ip in AGENT_IPS.items()}

    def ns(self, name: str) -> str:
        return f"{self.prefix}{name}"

    async def run(self, stop: asyncio.Event, control) -> None:
        delete_at_forced_exit(self.making, lambda: list(self.namespaces))
        at_forced_exit(lambda: shutil.rmtree(self.work, ignore_errors=True))
        try:
            await asyncio.to_thread(self._build)
            nodes = [asyncio.create_task(node.run(stop)) for node in self.nodes.values()]
            try:
                await self._play(stop, control)
            finally:
                await stop.wait()
                await asyncio.gather(*nodes, return_exceptions=True)
        finally:
            await asyncio.to_thread(self._teardown)

    async def _play(self, stop: asyncio.Event, control) -> None:
        for n, ip in AGENT_IPS.items():
            await control("POST", "/sim/agents", {"hostname": ip, "id": f"overlay-a{n}"})
        leases = await self._leases(stop)
        if leases is None:
            return
        for n, lease in leases.items():
            await control("PUT", f"/sim/agents/overlay-a{n}/overlays", {OVERLAY: lease["mesos_subnet"]})
        conflists = {n: self.work / f"cni-a{n}" / f"{OVERLAY}.conflist" for n in AGENT_IPS}
        if not await self._until(stop, lambda: all(path.exists() for path in conflists.values())):
            return
        containers = {n: await asyncio.to_thread(self._attach, n, conflists[n]) for n in AGENT_IPS}
        say(f"overlay    agents {', '.join(AGENT_IPS.values())}: leases "
            f"{', '.join(lease['mesos_subnet'] for lease in leases.values())}; containers "
            f"c1 {containers[1]} on {AGENT_IPS[1]}, c2 {containers[2]} on {AGENT_IPS[2]}", err=True)
        await control("POST", "/sim/apps", SERVER_APP)
        await control("POST", "/sim/apps", CLIENT_APP)
        server = EchoServer(self.ns("c2"))
        try:
            await self._exchanges(stop, containers)
        finally:
            server.close()

    async def _leases(self, stop: asyncio.Event) -> dict[int, dict] | None:
        """Each agent's lease of the overlay, once the processor has published them."""
        topic = self.catalog.topic("overlay").name
        found: dict[int, dict] = {}

        async def leased() -> bool:
            table = await asyncio.to_thread(read_table, self.bootstrap, topic)
            for n in AGENT_IPS:
                value = table.get(f"{OVERLAY}/overlay-a{n}")
                if value is not None:
                    found[n] = orjson.loads(value)
            return len(found) == len(AGENT_IPS)

        return found if await self._until(stop, leased) else None

    async def _until(self, stop: asyncio.Event, check) -> bool:
        """Polls ``check`` (a function or a coroutine function) until it holds, for at most WAIT_S."""
        for _ in range(int(WAIT_S / 0.5)):
            held = check()
            if asyncio.iscoroutine(held):
                held = await held
            if held:
                return True
            if stop.is_set():
                return False
            await sleep_or_stop(stop, 0.5)
        say("overlay    gave up waiting for the leases or the nodes", err=True)
        return False

    async def _exchanges(self, stop: asyncio.Event, containers: dict[int, str]) -> None:
        """Every two seconds: resolve the server's autoip name through agent 1's DNS, connect
        from c1 to the address it gives, print who answered and whom the server saw."""
        if not await set_or_stopped(self.nodes[1].dns.role.listening, stop, WAIT_S):  # binds on its own schedule
            return
        dns = self.nodes[1].dns.role.server.address[:2]
        seen: dict[str, list[str]] = {}
        count = 0
        while not stop.is_set():
            count += 1
            await report_names(dns, (SERVER_NAME, CLIENT_NAME), seen)
            try:
                addresses = await asyncio.to_thread(resolve, dns, SERVER_NAME)
                if not addresses:
                    say(f"overlay    {SERVER_NAME}: no answer yet")
                else:
                    reply = await asyncio.to_thread(exchange, self.ns("c1"), addresses[0], f"hello {count}")
                    # The short name: the dns line above shows the whole name and its answer.
                    say(f"overlay    c1 {containers[1]} -> {SERVER_SHORT} {addresses[0]}:{PORT}: {reply}")
            except OSError as error:
                say(f"overlay    {SERVER_NAME}: {error}")
            await sleep_or_stop(stop, 2.0)

    # -- namespaces -----------------------------------------------------------------------
    def _namespace(self, name: str) -> str:
        netns = self.ns(name)
        with self.making:
            sh("ip", "netns", "add", netns)
            self.namespaces.append(netns)
        sh("ip", "-n", netns, "link", "set", "lo", "up")
        return netns

    def _build(self) -> None:
        underlay = self._namespace("u")
        build_underlay(underlay, {self._namespace(f"a{n}"): ip for n, ip in AGENT_IPS.items()})

    def _attach(self, n: int, conflist_path: Path) -> str:
        """Container c<n> on agent n, attached with the CNI config agent n's node wrote (only
        host-local's data dir is the demo's)."""
        name = f"c{n}"
        return attach(json.loads(conflist_path.read_text()), self.ns(f"a{n}"), self._namespace(name), name,
                      self.work / f"ipam-a{n}", cni_bin())

    def _teardown(self) -> None:
        for netns in reversed(self.namespaces):
            sh("ip", "netns", "del", netns, check=False)
        self.namespaces.clear()
        shutil.rmtree(self.work, ignore_errors=True)


def exchange(netns: str, ip: str, message: str) -> str:
    """One TCP exchange from a namespace: the server's reply."""
    with socket_in(netns, socket.AF_INET, socket.SOCK_STREAM) as conn:
        conn.settimeout(3.0)
        conn.connect((ip, PORT))
        conn.sendall(message.encode())
        return conn.recv(4096).decode()


class EchoServer:
    """TCP on PORT in a namespace, from a thread of this process: answers each connection with
    what it received and whom it saw (the client's own address: no NAT on the way); every
    wait is bounded."""

    def __init__(self, netns: str) -> None:
        self.netns = netns
        self.sock = socket_in(netns, socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", PORT))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(2.0)
                try:
                    data = conn.recv(4096).decode()
                    conn.sendall(f"{data!r} answered by c2, which saw {peer[0]}".encode())
                except OSError:
                    continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
