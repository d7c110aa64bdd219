"""Three throw-away "agents" for the overlay kernel tests: a namespace each, joined by an
underlay bridge in a fourth, and "containers" attached to an agent with the real CNI plugins
(Debian's containernetworking-plugins) and the config the overlay role wrote.

Everything lives in namespaces named after one random prefix; `teardown` deletes every one of
them (the devices and nftables tables inside go with them)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from simulator.containers import CNI_DIRS, attach, build_underlay, cni_bin
from simulator.hosts import sh, socket_in

AGENTS = 3


def require_capabilities() -> str:
    """Skip, naming what is missing; the CNI plugins' directory otherwise."""
    if os.geteuid() != 0:
        pytest.skip("overlay kernel tests need root (network namespaces, VXLAN, nftables)")
    if shutil.which("ip") is None:
        pytest.skip("overlay kernel tests need the ip command (Debian package iproute2)")
    directory = cni_bin()
    if directory is None:
        pytest.skip(f"overlay kernel tests need the CNI bridge, host-local and portmap plugins in one of {CNI_DIRS} "
                    "(Debian package containernetworking-plugins)")
    probe = f"wo-probe-{secrets.token_hex(3)}"
    sh("ip", "netns", "add", probe)
    try:
        if subprocess.run(["ip", "-n", probe, "link", "add", "vx0", "type", "vxlan", "id", "1", "dstport", "4789"],
                          capture_output=True, timeout=10).returncode:
            pytest.skip("overlay kernel tests need VXLAN devices (kernel module vxlan)")
    finally:
        sh("ip", "netns", "del", probe, check=False)
    return directory


@dataclass
class Cluster:
    prefix: str
    cni: str  # the CNI plugins' directory
    work: Path  # host-local's data and the agents' CNI config dirs
    namespaces: list[str] = field(default_factory=list)

    @property
    def underlay(self) -> str:
        return f"{self.prefix}u"

    def agent(self, n: int) -> str:
        return f"{self.prefix}a{n}"

    @staticmethod
    def agent_ip(n: int) -> str:
        return f"10.99.0.{n}"

    def config_dir(self, n: int) -> Path:
        return self.work / f"cni-a{n}"

    def _namespace(self, name: str) -> str:
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def build(self) -> None:
        underlay = self._namespace(self.underlay)
        build_underlay(underlay, {self._namespace(self.agent(n)): self.agent_ip(n) for n in range(1, AGENTS + 1)})

    def container(self, n: int, name: str, overlay: str = "dcos") -> str:
        """A container namespace on agent `n`, attached with the CNI config the agent's overlay
        role wrote (only host-local's data dir is the test's). Returns the container's IP."""
        conflist = json.loads((self.config_dir(n) / f"{overlay}.conflist").read_text())
        return attach(conflist, self.agent(n), self._namespace(f"{self.prefix}{name}"), name,
                      self.work / f"ipam-a{n}", self.cni)

    def teardown(self) -> None:
        for name in reversed(self.namespaces):
            sh("ip", "netns", "del", name, check=False)
        self.namespaces.clear()


def new_cluster(work: Path) -> Cluster:
    cluster = Cluster(f"wo{secrets.token_hex(3)}-", require_capabilities(), work)
    try:
        cluster.build()
    except BaseException:
        cluster.teardown()
        raise
    return cluster


class EchoServer:
    """TCP and UDP echo on one port inside a namespace, served from threads of this process
    (the sockets were opened in the namespace); every wait is bounded, `close` ends it."""

    def __init__(self, netns: str, port: int = 7000) -> None:
        self.tcp = socket_in(netns, socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("0.0.0.0", port))
        self.tcp.listen(8)
        self.tcp.settimeout(0.2)
        self.udp = socket_in(netns, socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("0.0.0.0", port))
        self.udp.settimeout(0.2)
        self.peers: list[str] = []  # the source address of every TCP connection and datagram
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._serve_tcp, daemon=True),
                         threading.Thread(target=self._serve_udp, daemon=True)]
        for thread in self._threads:
            thread.start()

    def _serve_tcp(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self.tcp.accept()
            except (TimeoutError, OSError):
                continue
            self.peers.append(peer[0])
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        with conn:
            while not self._stop.is_set():
                try:
                    data = conn.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                conn.sendall(data)

    def _serve_udp(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.udp.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            self.peers.append(peer[0])
            self.udp.sendto(data, peer)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(2)
        self.tcp.close()
        self.udp.close()


def tcp_connect(netns: str, ip: str, port: int = 7000, timeout: float = 5.0) -> socket.socket:
    conn = socket_in(netns, socket.AF_INET, socket.SOCK_STREAM)
    conn.settimeout(timeout)
    conn.connect((ip, port))
    return conn


def tcp_round_trip(conn: socket.socket, payload: bytes) -> bytes:
    conn.sendall(payload)
    received = b""
    while len(received) < len(payload):
        chunk = conn.recv(4096)
        if not chunk:
            break
        received += chunk
    return received


def udp_round_trip(netns: str, ip: str, payload: bytes, port: int = 7000, timeout: float = 5.0) -> bytes:
    with socket_in(netns, socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(payload, (ip, port))
        return sock.recvfrom(4096)[0]
