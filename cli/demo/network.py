"""The network half of the demo: a node in namespaces, a VIP app on its backend hosts, and a
client that finds the VIP by name through the node's DNS and connects to it. The node's DNS
also serves the app's task names (Mesos-DNS and dcos-dns), printed whenever they change.

Needs root and nftables (network namespaces); the demo skips this half otherwise and says why.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import shutil
import socket
import threading

from dnslib import QTYPE, DNSRecord

from appliers.node import Node, NodeOptions
from cli.demo.lines import say
from cli.running import at_forced_exit
from schemas.catalog import Catalog
from simulator.hosts import BACKENDS, TCP_PORT, Hosts, build, sh, teardown
from runtime.blocking import sleep_or_stop

APP = {
    "id": "/shop/api",
    "instances": 3,
    # Only on the demo's backend hosts, which really serve on port 8080.
    "constraints": [["hostname", "LIKE", r"10\.200\.2\..*"]],
    "portDefinitions": [{"port": 0, "protocol": "tcp", "labels": {"VIP_0": "/shop/api:80"}}],
}
NAME = "shopapi.marathon.l4lb.thisdcos.directory"
# The app's task names, Mesos-DNS and dcos-dns style: each answers with the tasks' addresses.
TASK_NAMES = ("api-shop.marathon.mesos", "api-shop.marathon.autoip.dcos.thisdcos.directory")


def why_not() -> str | None:
    if os.geteuid() != 0:
        return "it needs root for network namespaces"
    if shutil.which("nft") is None:
        return "it needs nftables (Debian package nftables)"
    return None


def resolve(server: tuple[str, int], name: str) -> list[str]:
    """Ask the node's DNS server for ``name`` (A), as a client's resolver would."""
    query = DNSRecord.question(name, "A")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1.0)
        sock.sendto(query.pack(), server)
        reply = DNSRecord.parse(sock.recvfrom(4096)[0])
    return [str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A]


async def report_names(server: tuple[str, int], names, seen: dict[str, list[str]]) -> None:
    """Resolve each name through the node's DNS and print its answers when they changed."""
    for name in names:
        try:
            found = sorted(await asyncio.to_thread(resolve, server, name))
        except OSError as error:
            found = [str(error)]
        if seen.get(name) != found:
            seen[name] = found
            say(f"dns        {name} -> {', '.join(found) or 'no answer'}")


async def set_or_stopped(event: asyncio.Event, stop: asyncio.Event, timeout: float) -> bool:
    """Waits until ``event`` or ``stop`` is set (TimeoutError after ``timeout`` s): whether
    ``event`` is. A node stopped before it got there never sets it."""
    waits = [asyncio.ensure_future(e.wait()) for e in (event, stop)]
    try:
        done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
    if not done:
        raise asyncio.TimeoutError
    return event.is_set()


def delete_at_forced_exit(making: threading.Lock, names) -> None:
    """At a forced exit (cli/running.py), delete the namespaces ``names()`` lists (their veths
    go with them), once what is making them under ``making`` is done (1 s at most). The lock
    stays held: none is made after."""
    def delete() -> None:
        making.acquire(timeout=1.0)
        for name in names():
            sh("ip", "netns", "del", name, check=False)
    at_forced_exit(delete)


class NetworkDemo:
    def __init__(self, bootstrap: str, catalog: Catalog):
        # The demo runs until Ctrl-C, which tears the backends down; a day bounds them otherwise.
        self.hosts = Hosts(prefix=f"wf-demo-{secrets.token_hex(2)}-", lifetime=24 * 3600.0)
        self.node = Node(NodeOptions(bootstrap=bootstrap, catalog=catalog, node_id="demo-node", agent_ip="10.200.2.1",
                                     roles=("l4lb", "dns"), netns=self.hosts.hub, dns_listen=("127.0.0.1", 0)))
        self.making = threading.Lock()  # held while the namespaces are made

    async def run(self, stop: asyncio.Event, control) -> None:
        delete_at_forced_exit(self.making, lambda: [self.hosts.ns(name) for name in ("hub", "client", "container", *BACKENDS)])
        await asyncio.to_thread(self._build)
        try:
            node = asyncio.create_task(self.node.run(stop))
            # The DNS server binds on its own schedule: on a Kafka with history, after the l4lb
            # loop has caught up.
            if (await set_or_stopped(self.node.l4lb.caught_up, stop, 120)
                    and await set_or_stopped(self.node.dns.role.listening, stop, 120)):
                for name, ip in BACKENDS.items():
                    await control("POST", "/sim/agents", {"hostname": ip, "id": f"demo-{name}", "port_ranges": [[TCP_PORT, TCP_PORT]]})
                await control("POST", "/sim/apps", APP)
                say(f"node DNS on {self.node.dns.role.server.address[0]}:{self.node.dns.role.server.address[1]}; "
                    f"a client in namespace {self.hosts.ns('client')} connects to {NAME}:80", err=True)
                await self._client(stop)
            await node
        finally:
            await asyncio.to_thread(teardown, self.hosts)

    def _build(self) -> None:
        with self.making:
            build(self.hosts)

    async def _client(self, stop: asyncio.Event) -> None:
        """Every two seconds: resolve the VIP's name, connect, print which backend answered."""
        server = self.node.dns.role.server.address[:2]
        seen: dict[str, list[str]] = {}
        while not stop.is_set():
            await report_names(server, TASK_NAMES, seen)
            try:
                addresses = await asyncio.to_thread(resolve, server, NAME)
                if addresses:
                    ip = random.choice(addresses)
                    backend, _ = await asyncio.to_thread(self.hosts.hello, "client", ip, 80)
                    say(f"client     {NAME} -> {ip}:80 -> answered by {backend}")
                else:
                    say(f"client     {NAME}: no answer yet (the VIP is not in the node's kernel)")
            except OSError as error:
                say(f"client     {NAME}: {error}")
            await sleep_or_stop(stop, 2.0)
