"""Stand-in container hosts in network namespaces, for the demo and the kernel tests.

    client (10.200.1.2, fd00:201::2) --routed veth-- hub (the node: nftables, bridge br0)
    container (10.200.2.20, on br0)                   |  10.200.2.1 / fd00:200::1
                                            b1 .11   b2 .12   b3 .13   (backends on br0)

Every namespace is named <prefix>*, traffic goes only to addresses inside them, and
``teardown`` deletes them all (which also removes every veth). Backends are threads serving
sockets opened inside their namespace; they answer with their own name and stop at
``teardown`` or after their ``lifetime`` (LIFETIME seconds unless told), whichever comes first.
"""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field

LIFETIME = 120.0  # seconds a backend serves at most
BACKENDS = {"b1": "10.200.2.11", "b2": "10.200.2.12", "b3": "10.200.2.13"}
TCP_PORT, UDP_PORT = 8080, 5353


def sh(*argv: str, ns: str | None = None, check: bool = True) -> str:
    if ns:
        argv = ("ip", "netns", "exec", ns, *argv)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    if check and done.returncode:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


def socket_in(ns: str, family: int, kind: int) -> socket.socket:
    """A socket opened inside `ns`: a short-lived thread enters the namespace (setns moves only
    that thread) and opens it; the socket keeps that namespace wherever it is used from."""
    box: dict = {}

    def work() -> None:
        try:
            fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
            try:
                if ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            finally:
                os.close(fd)
            box["sock"] = socket.socket(family, kind)
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(5)
    if "sock" not in box:
        raise box.get("error") or TimeoutError("socket_in")
    return box["sock"]


@dataclass
class Hosts:
    prefix: str
    stop: threading.Event = field(default_factory=threading.Event)
    lifetime: float = LIFETIME  # seconds a backend serves at most

    def ns(self, name: str) -> str:
        return self.prefix + name

    @property
    def hub(self) -> str:
        return self.ns("hub")

    def connect(self, where: str, vip: str, port: int, timeout: float = 2.0) -> socket.socket:
        family = socket.AF_INET6 if ":" in vip else socket.AF_INET
        sock = socket_in(self.ns(where), family, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect((vip, port))
        return sock

    def hello(self, where: str, vip: str, port: int) -> tuple[str, str]:
        """One new connection: (backend name, client address the backend saw)."""
        with self.connect(where, vip, port) as sock:
            name, peer = sock.makefile().readline().split()
            return name, peer

    def spread(self, where: str, vip: str, port: int, count: int) -> dict[str, int]:
        seen: dict[str, int] = {}
        for _ in range(count):
            name = self.hello(where, vip, port)[0]
            seen[name] = seen.get(name, 0) + 1
        return seen

    def serve(self, name: str, ip: str, family: int) -> None:
        tcp = socket_in(self.ns(name), family, socket.SOCK_STREAM)
        udp = socket_in(self.ns(name), family, socket.SOCK_DGRAM)
        for sock, port in ((tcp, TCP_PORT), (udp, UDP_PORT)):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((ip, port))
            sock.settimeout(0.2)
        tcp.listen(64)
        deadline = time.monotonic() + self.lifetime

        def running() -> bool:
            return not self.stop.is_set() and time.monotonic() < deadline

        def talk(conn: socket.socket, peer: str) -> None:
            with conn:
                conn.settimeout(0.2)
                conn.sendall(f"{name} {peer}\n".encode())
                while running():  # answer every line with our name, for long-lived connections
                    try:
                        if not conn.recv(100):
                            return
                        conn.sendall(f"{name}\n".encode())
                    except socket.timeout:
                        continue
                    except OSError:
                        return

        def accept() -> None:
            with tcp:
                while running():
                    try:
                        conn, peer = tcp.accept()
                    except socket.timeout:
                        continue
                    threading.Thread(target=talk, args=(conn, peer[0]), daemon=True).start()

        def answer() -> None:
            with udp:
                while running():
                    try:
                        _, peer = udp.recvfrom(100)
                    except socket.timeout:
                        continue
                    udp.sendto(f"{name} {peer[0]}".encode(), peer)

        threading.Thread(target=accept, daemon=True).start()
        threading.Thread(target=answer, daemon=True).start()


def build(node: Hosts) -> None:
    hub = node.hub
    for name in ("hub", "client", "container", *BACKENDS):
        sh("ip", "netns", "add", node.ns(name))
    for name in ("hub", "client", "container", *BACKENDS):
        sh("ip", "link", "set", "lo", "up", ns=node.ns(name))
    for key in ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
                # The hub forwards the container's VIP traffic back out of br0 and would send
                # ICMP redirects (measured: 4 per 30 connections, none reached the container
                # once NATed). Off, so no run depends on what NAT does to them.
                "net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.default.send_redirects=0"):
        sh("sysctl", "-qw", key, ns=hub)
    # With br_netfilter, bridged frames (backend -> container on br0) pass the hub's conntrack,
    # which would undo the DNAT even without masquerade and hide whether masquerade works.
    # Off, the bridge behaves like a backend on another host: its reply bypasses the node.
    # (Absent when br_netfilter is not loaded, which means the same.)
    for key in ("net.bridge.bridge-nf-call-iptables=0", "net.bridge.bridge-nf-call-ip6tables=0"):
        sh("sysctl", "-qw", key, ns=hub, check=False)
    sh("ip", "link", "add", "br0", "type", "bridge", ns=hub)
    sh("ip", "addr", "add", "10.200.2.1/24", "dev", "br0", ns=hub)
    sh("ip", "-6", "addr", "add", "fd00:200::1/64", "dev", "br0", "nodad", ns=hub)
    sh("ip", "link", "set", "br0", "up", ns=hub)
    ports = {name: (ip, f"fd00:200::{ip.rsplit('.', 1)[1]}") for name, ip in BACKENDS.items()}
    ports["container"] = ("10.200.2.20", "fd00:200::20")
    for name, (ip4, ip6) in ports.items():
        ns = node.ns(name)
        sh("ip", "link", "add", f"v{name[:8]}", "netns", hub, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "link", "set", f"v{name[:8]}", "master", "br0", "up", ns=hub)
        sh("ip", "addr", "add", f"{ip4}/24", "dev", "eth0", ns=ns)
        sh("ip", "-6", "addr", "add", f"{ip6}/64", "dev", "eth0", "nodad", ns=ns)
        sh("ip", "link", "set", "eth0", "up", ns=ns)
        sh("ip", "route", "add", "default", "via", "10.200.2.1", ns=ns)
        sh("ip", "-6", "route", "add", "default", "via", "fd00:200::1", ns=ns)
    client = node.ns("client")
    sh("ip", "link", "add", "vclient", "netns", hub, "type", "veth", "peer", "name", "eth0", "netns", client)
    sh("ip", "addr", "add", "10.200.1.1/24", "dev", "vclient", ns=hub)
    sh("ip", "-6", "addr", "add", "fd00:201::1/64", "dev", "vclient", "nodad", ns=hub)
    sh("ip", "link", "set", "vclient", "up", ns=hub)
    sh("ip", "addr", "add", "10.200.1.2/24", "dev", "eth0", ns=client)
    sh("ip", "-6", "addr", "add", "fd00:201::2/64", "dev", "eth0", "nodad", ns=client)
    sh("ip", "link", "set", "eth0", "up", ns=client)
    sh("ip", "route", "add", "default", "via", "10.200.1.1", ns=client)
    sh("ip", "-6", "route", "add", "default", "via", "fd00:201::1", ns=client)
    for name, ip in BACKENDS.items():
        node.serve(name, ip, socket.AF_INET)
        node.serve(name, ports[name][1], socket.AF_INET6)




def teardown(node: Hosts) -> None:
    node.stop.set()
    time.sleep(0.3)  # let the server loops see the stop flag and close their sockets
    for name in ("hub", "client", "container", *BACKENDS):
        sh("ip", "netns", "del", node.ns(name), check=False)
