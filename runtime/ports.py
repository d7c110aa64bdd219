"""Free ports on loopback, for the processes the demo, the benches and the tests start."""

from __future__ import annotations

import socket


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct ports that were free a moment ago: all bound to port 0 at once (so
    they differ), then released for the caller's servers to take."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port(host: str = "127.0.0.1") -> int:
    (port,) = free_ports(1, host)
    return port


def free_udp_and_tcp_port(host: str = "127.0.0.1", attempts: int = 50) -> int:
    """A port free for both UDP and TCP a moment ago, for a DNS server (it binds both): a port
    free for TCP may be some client's ephemeral UDP port, and the reverse."""
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            tcp.bind((host, 0))
            port = tcp.getsockname()[1]
            try:
                udp.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no port on {host} free for both UDP and TCP in {attempts} attempts")
