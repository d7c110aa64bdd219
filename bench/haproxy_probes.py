"""What bench/haproxy_convergence.py runs beside the pipeline: the tasks' HTTP backends, the
clients that ask HAProxy which backend serves an app, the simulator's apps as the bench drives
them, and what the node's haproxy role applied when. Not a bench itself.

The backends are one asyncio process answering HTTP on every host port the simulated agent
offers, each with its own port number as the body, so a client knows which task served it:

    .venv/bin/python -m bench.haproxy_probes --first-port 20000 --count 3300

binds `count` free ports on 127.0.0.1 from `first-port` up (skipping taken ones, and staying
below the kernel's ephemeral range), prints one JSON line {"port_ranges": [[a, b], ...]} once
every one listens, and serves until its stdin closes (the bench holds the other end, so the
backends never outlive the bench) or for MAX_LIFETIME_S at most.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import socket
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path

import orjson

from schemas import codec
from schemas.haproxy import Service

LOOPBACK = "127.0.0.1"
MAX_LIFETIME_S = 4 * 3600.0
REQUEST_HEAD_LIMIT = 8192  # bytes of a request head a backend reads at most
BACKEND_READ_TIMEOUT_S = 10.0
REPLY_LIMIT = 65536  # bytes of a reply a client reads at most
POLL_PAUSE_S = 0.001  # between two probes of one wait
FD_SPARE = 256  # open files beyond the listening sockets (connections, the interpreter's own)


# -- ports ----------------------------------------------------------------------------------

def ephemeral_first() -> int:
    """The first port the kernel hands out to outgoing connections: listeners stay below it."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def raise_fd_limit(needed: int) -> int:
    """Raise this process's open-file limit to at least `needed` (up to the hard limit); returns
    the new soft limit. SystemExit when the hard limit is lower: ask for a smaller cluster."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return soft
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise SystemExit(f"{needed} open files needed, the hard limit is {hard} (ulimit -Hn); use fewer apps or tasks")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed if hard == resource.RLIM_INFINITY else hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_ports(count: int, first: int, avoid: set[int] = frozenset()) -> list[int]:
    """`count` ports from `first` up, below the ephemeral range, that were free a moment ago
    (bound, then released): for HAProxy's frontends, which HAProxy binds itself."""
    found, port, last = [], first, ephemeral_first() - 1
    while len(found) < count:
        if port > last:
            raise SystemExit(f"only {len(found)} of {count} free ports between {first} and {last}")
        if port not in avoid:
            with socket.socket() as probe:
                try:
                    probe.bind((LOOPBACK, port))
                    found.append(port)
                except OSError:
                    pass
        port += 1
    return found


def listening_sockets(count: int, first: int) -> list[socket.socket]:
    """`count` sockets listening on 127.0.0.1 from `first` up, taken ports skipped."""
    sockets, port, last = [], first, ephemeral_first() - 1
    try:
        while len(sockets) < count:
            if port > last:
                raise SystemExit(f"only {len(sockets)} of {count} free ports between {first} and {last}")
            sock = socket.socket()
            try:
                sock.bind((LOOPBACK, port))
                sock.listen(128)
                sock.setblocking(False)
                sockets.append(sock)
            except OSError:
                sock.close()
            port += 1
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def port_ranges(ports: list[int]) -> list[list[int]]:
    """[20000, 20001, 20003] -> [[20000, 20001], [20003, 20003]] (an agent's port resource)."""
    ranges: list[list[int]] = []
    for port in sorted(ports):
        if ranges and port == ranges[-1][1] + 1:
            ranges[-1][1] = port
        else:
            ranges.append([port, port])
    return ranges


# -- the backends process --------------------------------------------------------------------

async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int) -> None:
    """One request, answered with this port's number; the connection closes after it."""
    try:
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), BACKEND_READ_TIMEOUT_S)
        body = str(port).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                     b"Connection: close\r\n\r\n%s" % (len(body), body))
        await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve_backends(count: int, first: int) -> None:
    raise_fd_limit(count + FD_SPARE)
    sockets = listening_sockets(count, first)
    servers = []
    try:
        for sock in sockets:
            port = sock.getsockname()[1]
            servers.append(await asyncio.start_server(partial(answer, port=port), sock=sock, limit=REQUEST_HEAD_LIMIT))
        print(json.dumps({"port_ranges": port_ranges([s.getsockname()[1] for s in sockets])}), flush=True)
        loop, closed = asyncio.get_running_loop(), asyncio.Event()

        def watch_stdin() -> None:  # EOF: the bench is done, or gone
            sys.stdin.buffer.read()
            loop.call_soon_threadsafe(closed.set)

        threading.Thread(target=watch_stdin, daemon=True).start()
        try:
            await asyncio.wait_for(closed.wait(), MAX_LIFETIME_S)
        except asyncio.TimeoutError:
            pass
    finally:
        for server in servers:
            server.close()
        for sock in sockets:
            sock.close()


# -- the clients -----------------------------------------------------------------------------

def ask(port: int, host: str, timeout: float = 2.0) -> tuple[int, str]:
    """One GET for `host` on a new connection to 127.0.0.1:port: (status, body). OSError when
    the connection fails or the reply does not come within `timeout`."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
        sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        reply = bytearray()
        while len(reply) < REPLY_LIMIT and (chunk := sock.recv(4096)):
            reply += chunk
    head, _, body = bytes(reply).partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1] if head.startswith(b"HTTP/") else b"0"
    return (int(status) if status.isdigit() else 0), body.decode(errors="replace")


def backend_port(status: int, body: str) -> int | None:
    """The backend that answered (its port), or None for an answer from HAProxy itself (a 503)."""
    return int(body) if status == 200 and body.isdigit() else None


def wait_until_served(port: int, host: str, wanted: Callable[[int], bool], timeout: float) -> tuple[float, int] | None:
    """Ask for `host` back to back until a backend whose port is `wanted` answers: (wall-clock
    time of that answer, that port), or None after `timeout`. The answer is seen at most one
    round of the app's servers late (HAProxy balances round-robin, a probe takes ~1 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            served = backend_port(*ask(port, host))
        except OSError:
            served = None
        if served is not None and wanted(served):
            return time.time(), served
        time.sleep(POLL_PAUSE_S)
    return None


class RequestLoop:
    """`clients` threads asking HAProxy for random hosts of `hosts`, each request on a new
    connection, back to back, until stop() (or `max_s`). A request fails on a connection error
    or timeout, or on any answer that is not a backend's 200."""

    def __init__(self, port: int, hosts: list[str], clients: int, max_s: float = 600.0):
        self.port, self.hosts, self.max_s = port, hosts, max_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.requests = 0
        self.failures: Counter[str] = Counter()
        self.failed_at: list[float] = []
        self._threads = [threading.Thread(target=self._run, args=(random.Random(n),), daemon=True)
                         for n in range(clients)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> dict:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
        return {"requests": self.requests, "failed": sum(self.failures.values()), "failures": dict(self.failures)}

    def _run(self, rng: random.Random) -> None:
        deadline = time.monotonic() + self.max_s
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                status, body = ask(self.port, rng.choice(self.hosts))
                failure = None if backend_port(status, body) is not None else f"status {status}"
            except OSError as error:
                failure = type(error).__name__
            with self._lock:
                self.requests += 1
                if failure:
                    self.failures[failure] += 1
                    self.failed_at.append(time.time())


# -- the simulator's apps and the node's passes ----------------------------------------------

class Cluster:
    """The simulator's Marathon apps as the bench drives them (its control API and Marathon
    API); `tasks` holds each app's running task ids as the bench made them."""

    def __init__(self, url: str):
        self.url = url
        self.tasks: dict[str, list[str]] = {}

    def control(self, method: str, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(self.url + path, method=method,
                                         data=orjson.dumps(body) if body is not None else None)
        with urllib.request.urlopen(request, timeout=30) as response:
            return orjson.loads(response.read())

    @staticmethod
    def vhost(app_id: str) -> str:
        return app_id.strip("/").replace("/", "-") + ".bench.test"

    def create_app(self, app_id: str, service_port: int, instances: int, group: str) -> float:
        """A host-networked app with one service port and a vhost; the stamp of its creation."""
        reply = self.control("POST", "/sim/apps", {
            "id": app_id, "instances": instances, "cmd": "sleep 3600", "cpus": 0.01, "mem": 32,
            "portDefinitions": [{"port": service_port, "protocol": "tcp"}],
            "labels": {"HAPROXY_GROUP": group, "HAPROXY_0_VHOST": self.vhost(app_id)}})
        self.tasks[app_id] = [c["task_id"] for c in _changes(reply, "TASK_RUNNING")]
        return next(c["at"] for c in reply["changes"] if c["kind"] == "app_created")

    def launch(self, app_id: str) -> tuple[str, float]:
        """One more task for the app: (its id, the stamp of its TASK_RUNNING)."""
        reply = self.control("PUT", f"/sim/apps{app_id}/instances/{len(self.tasks[app_id]) + 1}")
        running = _changes(reply, "TASK_RUNNING")[0]
        self.tasks[app_id].append(running["task_id"])
        return running["task_id"], running["at"]

    def kill(self, app_id: str, task_id: str) -> float:
        """Kill the task and scale its app down by one: the stamp of its TASK_KILLING."""
        reply = self.control("DELETE", f"/sim/tasks/{task_id}?scale=true")
        self.tasks[app_id].remove(task_id)
        return _changes(reply, "TASK_KILLING")[0]["at"]

    def ports_of(self, app_id: str) -> dict[str, int]:
        """Task id -> host port, from the simulator's Marathon API."""
        with urllib.request.urlopen(f"{self.url}/v2/apps{app_id}", timeout=30) as response:
            app = orjson.loads(response.read())["app"]
        return {task["id"]: task["ports"][0] for task in app.get("tasks", []) if task.get("ports")}

    def ports_by_app(self) -> dict[str, set[int]]:
        with urllib.request.urlopen(f"{self.url}/v2/tasks", timeout=60) as response:
            tasks = orjson.loads(response.read())["tasks"]
        found: dict[str, set[int]] = {}
        for task in tasks:
            found.setdefault(task["appId"], set()).update(task.get("ports") or [])
        return found


def _changes(reply: dict, state: str) -> list[dict]:
    return [c for c in reply["changes"] if c["kind"] == "task_state" and c["state"] == state]


class AppliedTasks:
    """When the node's HAProxy got each task as a server, and when it lost it: the time of the
    pass that applied the record (runtime API or reload), from the role loop's on_applied."""

    def __init__(self) -> None:
        self.servers: dict[str, set[str]] = {}  # service key -> task ids of its servers
        self.added_at: dict[str, float] = {}
        self.removed_at: dict[str, float] = {}

    def start_from(self, services: dict[str, Service]) -> None:
        self.servers = {key: {server.task_id for server in service.servers} for key, service in services.items()}

    def record(self, records, at: float) -> None:
        for record in records:
            now = {s.task_id for s in codec.decode(record.value, Service).servers} if record.value else set()
            before = self.servers.get(record.key, set())
            for task in now - before:
                self.added_at[task] = at
            for task in before - now:
                self.removed_at[task] = at
            self.servers[record.key] = now


def time_passes(role) -> list[tuple[float, float, bool]]:
    """Wrap the role's apply: (start, end, reloaded?) of every pass that changed HAProxy,
    appended to the list returned."""
    passes: list[tuple[float, float, bool]] = []
    apply = role.apply

    def timed(plan) -> None:
        started, reloads = time.time(), role.reloads
        try:
            apply(plan)
        finally:
            passes.append((started, time.time(), role.reloads > reloads))

    role.apply = timed
    return passes


def main() -> None:
    parser = argparse.ArgumentParser(description="HTTP backends answering their port number, on many ports")
    parser.add_argument("--first-port", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve_backends(args.count, args.first_port))


if __name__ == "__main__":
    main()
