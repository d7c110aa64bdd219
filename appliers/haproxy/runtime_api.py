"""HAProxy's two command sockets. The runtime API (the admin-level stats socket): send
commands, read the replies, and read the servers' state back. The master CLI: `show proc`
and `reload`. Blocking, with a timeout on every read; call it from a thread in async code.

HAProxy 2.6 facts this relies on:
- in interactive mode (`prompt`), every reply ends with a line holding only the prompt "> ",
  so one connection carries a whole batch and each reply is read to its own end;
- `set server B/S state|weight` answers nothing on success; `set server B/S addr IP port P`
  answers "IP changed from ..." or "no need to change the addr, port changed ..."; any other
  text ("No such server.", "Invalid addr ...", "Unknown command ...") is a failure;
- the master CLI's prompt is "master> ", or "master[ReloadFailed]> " after a failed reload;
  it does not close a connection after a reply, so a reply ends at the next prompt.
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass
from typing import Sequence

PROMPT = b"\n> "
MASTER_PROMPT = re.compile(rb"master(?:\[[^\]]*\])?> ")
_SET_SERVER_OK = re.compile(r"^(IP changed from|no need to change the addr|port changed from)")


class RuntimeApiError(Exception):
    """The socket failed, or a command was refused. `done` commands before it were applied."""

    def __init__(self, message: str, command: str | None = None, reply: str = "", done: int = 0):
        super().__init__(message)
        self.command = command
        self.reply = reply
        self.done = done


@dataclass(frozen=True)
class ServerRuntime:
    """One server line as HAProxy holds it now (`show servers state`)."""

    backend: str
    name: str
    ip: str
    port: int
    weight: int  # the user weight (what `set server ... weight` sets)
    maintenance: bool  # administratively in maintenance (config `disabled` or `state maint`)
    up: bool  # operational state: up (or no check and not in maintenance)


class RuntimeApi:
    def __init__(self, socket_path: str, timeout: float = 2.0):
        self.socket_path = socket_path
        self.timeout = timeout

    def execute(self, commands: Sequence[str]) -> list[str]:
        """Send `commands` in order over one connection; their replies. Stops at the first
        refused `set` command with RuntimeApiError (its `done` says how many went through)."""
        replies: list[str] = []
        if not commands:
            return replies
        with self._session() as session:
            for command in commands:
                reply = session.ask(command)
                if command.startswith("set ") and not _accepted(command, reply):
                    raise RuntimeApiError(f"HAProxy refused {command!r}: {reply}", command, reply, len(replies))
                replies.append(reply)
        return replies

    def ask(self, command: str) -> str:
        """One command, its reply text."""
        with self._session() as session:
            return session.ask(command)

    def servers_state(self) -> dict[str, dict[str, ServerRuntime]]:
        """backend -> server name -> what HAProxy holds, read back from HAProxy itself."""
        return parse_servers_state(self.ask("show servers state"))

    def _session(self) -> "_Session":
        return _Session(self.socket_path, self.timeout)


class _Session:
    def __init__(self, path: str, timeout: float):
        self.path = path
        self.timeout = timeout
        self.sock: socket.socket | None = None

    def __enter__(self) -> "_Session":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
            self.sock = sock
            sock.sendall(b"prompt\n")
            self._read_reply()
        except OSError as error:
            sock.close()
            raise RuntimeApiError(f"runtime API {self.path}: {error}") from error
        return self

    def __exit__(self, *exc) -> None:
        if self.sock is not None:
            try:
                self.sock.sendall(b"quit\n")
            except OSError:
                pass
            self.sock.close()

    def ask(self, command: str) -> str:
        if "\n" in command or ";" in command:
            raise RuntimeApiError(f"one command per line, without ';': {command!r}", command)
        try:
            self.sock.sendall(command.encode() + b"\n")
            return self._read_reply()
        except OSError as error:
            raise RuntimeApiError(f"runtime API {self.path}: {command!r}: {error}", command) from error

    def _read_reply(self) -> str:
        buffer = b""
        deadline = time.monotonic() + self.timeout
        while not buffer.endswith(PROMPT) and buffer != b"> ":
            if time.monotonic() > deadline:
                raise socket.timeout(f"no complete reply within {self.timeout}s")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("HAProxy closed the connection")
            buffer += chunk
        return buffer[:-2].decode(errors="replace").strip()


def _accepted(command: str, reply: str) -> bool:
    if not reply:
        return True
    return " addr " in command and bool(_SET_SERVER_OK.match(reply))


def parse_servers_state(text: str) -> dict[str, dict[str, ServerRuntime]]:
    """`show servers state` (format 1): be_id be_name srv_id srv_name srv_addr srv_op_state
    srv_admin_state srv_uweight srv_iweight ... srv_port (the 19th field)."""
    result: dict[str, dict[str, ServerRuntime]] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 19 or line.startswith("#"):
            continue
        backend, name, ip = fields[1], fields[3], fields[4]
        op_state, admin_state, weight, port = int(fields[5]), int(fields[6]), int(fields[7]), fields[18]
        result.setdefault(backend, {})[name] = ServerRuntime(
            backend=backend, name=name, ip=ip, port=int(port) if port.isdigit() else 0, weight=weight,
            # admin state bits: 0x01 forced (`state maint`, and config `disabled` sets it too),
            # 0x02 inherited, 0x20 from DNS; 0x04 only remembers config `disabled` and stays set
            # after `state ready`, so it does not mean maintenance
            maintenance=bool(admin_state & 0x23), up=op_state == 2,
        )
    return result


def master_command(path: str, command: str, timeout: float, wait_reply: bool = True) -> str:
    """One command on the master CLI socket, in prompt mode; its reply. OSError when the
    master does not answer (it refuses connections while it re-executes)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(f"prompt\n{command}\n".encode())
        if not wait_reply:
            # Closing at once can make the master drop the command unread: wait for it to
            # close the connection itself (it re-executes on `reload`), boundedly.
            try:
                while sock.recv(65536):
                    pass
            except OSError:
                pass
            return ""
        buffer = b""
        deadline = time.monotonic() + timeout
        while len(MASTER_PROMPT.findall(buffer)) < 2 and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buffer += chunk
        parts = MASTER_PROMPT.split(buffer)
        if len(parts) < 3:
            raise ConnectionError(f"incomplete reply to {command!r}")
        return parts[1].decode(errors="replace")


@dataclass(frozen=True)
class Worker:
    pid: int
    reloads: int  # how many reloads ago it was started: 0 is the current generation


@dataclass(frozen=True)
class ProcTable:
    """The master CLI's `show proc`."""

    master_pid: int
    reloads: int
    failed_reloads: int
    workers: tuple[Worker, ...]

    @property
    def current_workers(self) -> tuple[Worker, ...]:
        return tuple(w for w in self.workers if w.reloads == 0)


def parse_show_proc(text: str) -> ProcTable:
    master_pid = reloads = failed = 0
    workers: list[Worker] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3 or not fields[0].isdigit():
            continue
        if fields[1] == "master":
            master_pid, reloads = int(fields[0]), int(fields[2])
            if "[failed:" in line:
                failed = int(line.split("[failed:")[1].split("]")[0])
        elif fields[1] == "worker" and fields[2].isdigit():
            workers.append(Worker(int(fields[0]), int(fields[2])))
    return ProcTable(master_pid, reloads, failed, tuple(workers))


__all__ = [
    "ProcTable", "RuntimeApi", "RuntimeApiError", "ServerRuntime", "Worker", "master_command",
    "parse_servers_state", "parse_show_proc",
]
