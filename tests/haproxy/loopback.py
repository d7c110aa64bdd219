"""Real HTTP backends and a plain HTTP(S) client on 127.0.0.1, for HAProxy behaviour tests.

A backend answers every request with its own name as the body, and echoes the path it got in
`X-Backend-Path`, so a test sees where a request went and how it was rewritten."""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from contextlib import closing
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from runtime.ports import free_ports


class _Answer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = self.server.name.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Backend-Path", self.path)
        self.send_header("X-Backend-Host", self.headers.get("Host", ""))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class Backend:
    """An HTTP server on 127.0.0.1 (a free port) answering its name, in a thread."""

    def __init__(self, name: str):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
        self.server.daemon_threads = True
        self.server.name = name
        self.name = name
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: str


def get(port: int, path: str = "/", host: str = "localhost", sni: str | None = None,
        headers: dict[str, str] | None = None, timeout: float = 5.0) -> Reply:
    """One GET on a new connection to 127.0.0.1:port; TLS with `sni` as server name when given
    (certificate not verified: the node's is self-signed)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if sni is not None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        sock = context.wrap_socket(sock, server_hostname=sni)
    with closing(sock):
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read().decode(errors="replace")
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, body)

__all__ = ["Backend", "Reply", "free_ports", "get"]
