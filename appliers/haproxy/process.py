"""The one seam to the HAProxy process: the config file, the master-worker process and its
master CLI. Every wait is bounded.

- A config is written to a temporary file next to haproxy.cfg, checked with `haproxy -c`, and
  renamed over haproxy.cfg only when it passes; otherwise haproxy.cfg (what HAProxy serves
  and reloads from) is untouched, so the last good config keeps serving.
- HAProxy runs in master-worker mode (`-W`) with a master CLI socket (`-S`), in its own
  process group. A reload is the master CLI's `reload`: the master re-executes itself and
  hands the listening sockets to the new worker, so no connection is refused; the old worker
  finishes its connections, for at most `hard-stop-after`.
- HAProxy 2.6's master CLI prints nothing for `reload` and may drop the connection while it
  re-executes, so a reload is confirmed by polling `show proc` until the master's reload
  counter has moved and a new worker is listed. A config that passed the check can still
  fail to load (a port another process holds): the old workers keep serving, and the last
  good config goes back into haproxy.cfg and is reloaded, so a later restart is safe too.
- Stopping kills the master's whole process group and waits until no process is left in it.
  Every started HAProxy is also stopped when this Python process exits (atexit), and, when
  started from the main thread, gets SIGTERM if this process dies (PR_SET_PDEATHSIG). An
  HAProxy that an earlier, killed node left on the same directory (its pid file) is stopped
  before a new one starts.
- `converge` is one reconcile step for the node role: plan (slots.py), then runtime
  commands, or a config swap and reload.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from appliers.haproxy.render import render
from appliers.haproxy.runtime_api import ProcTable, RuntimeApi, RuntimeApiError, master_command, parse_show_proc
from appliers.haproxy.settings import HaproxySettings
from appliers.haproxy.slots import Applied, Plan, plan
from schemas.haproxy import Service

HAPROXY = "/usr/sbin/haproxy"
_PR_SET_PDEATHSIG = 1
_running: set["HaproxyProcess"] = set()


class HaproxyError(Exception):
    """HAProxy did not do what was asked. `unbindable`: the frontends whose port another
    process holds (from HAProxy's log), so the caller can leave just those services out."""

    def __init__(self, message: str, log: str = ""):
        super().__init__(message + (f": {log}" if log else ""))
        self.unbindable = bind_failures(log)


class ReloadFailed(HaproxyError):
    """The master could not load a config that passed `haproxy -c` (a port taken by another
    process, say). The old workers keep serving; haproxy.cfg is put back to the last good."""


def bind_failures(log: str) -> list[str]:
    """The frontends HAProxy could not bind, from its log ("Binding [file:line] for frontend
    NAME: cannot bind socket ...")."""
    return sorted(set(re.findall(r"for frontend (\S+): cannot bind socket", log)))


class ConfigRejected(HaproxyError):
    """`haproxy -c` refused a config; `output` is what it said. The old config stays."""

    def __init__(self, output: str):
        super().__init__(f"haproxy -c refused the config: {output.strip()[-2000:]}")
        self.output = output


def check_config(path: str, binary: str = HAPROXY, timeout: float = 30.0) -> tuple[bool, str]:
    """`haproxy -c -f path`: (valid, what HAProxy said)."""
    try:
        result = subprocess.run([binary, "-c", "-f", path], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"haproxy -c took more than {timeout}s"
    return result.returncode == 0, (result.stdout + result.stderr)


class HaproxyProcess:
    def __init__(self, settings: HaproxySettings, binary: str = HAPROXY, timeout: float = 10.0):
        self.settings = settings
        self.binary = binary
        self.timeout = timeout
        self.directory = Path(settings.directory)
        self.config_path = Path(settings.config_path)
        self.master_socket = settings.master_socket
        self.runtime = RuntimeApi(settings.stats_socket, timeout=min(timeout, 5.0))
        self._process: subprocess.Popen | None = None
        self._good_text: str | None = None  # the last config HAProxy loaded
        self.pid_path = self.directory / "haproxy.pid"

    # ---- the config file ---------------------------------------------------------------

    def write_config(self, text: str, check: bool = True) -> bool:
        """Check `text` and make it haproxy.cfg atomically. False when it is already the
        config; ConfigRejected (haproxy.cfg untouched, the text kept as haproxy.cfg.rejected
        for the operator) when `haproxy -c` refuses it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.config_path.exists() and self.config_path.read_text() == text:
            return False
        temporary = self.directory / f".haproxy.cfg.{os.getpid()}.tmp"
        with open(temporary, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        valid, output = check_config(str(temporary), self.binary) if check else (True, "")
        if not valid:
            os.replace(temporary, self.directory / "haproxy.cfg.rejected")
            raise ConfigRejected(output)
        os.replace(temporary, self.config_path)
        return True

    def apply(self, text: str, force_reload: bool = False) -> str:
        """Serve `text`: 'unchanged', 'started' or 'reloaded' (`force_reload`: even when the
        text is what HAProxy has). ConfigRejected and ReloadFailed leave the old one serving."""
        changed = self.write_config(text)
        if not self.running:
            self.start()
            self._good_text = text
            return "started"
        if not changed and not force_reload:
            return "unchanged"
        try:
            self.reload()
        except ReloadFailed:
            self._restore_good_config()
            raise
        self._good_text = text
        return "reloaded"

    def _restore_good_config(self) -> None:
        """After a failed reload: the last config that loaded goes back into haproxy.cfg, and a
        reload onto it takes the master out of its failed state (and keeps a restart safe)."""
        if self._good_text is None:
            return
        self.write_config(self._good_text, check=False)
        self.reload()

    # ---- the process -------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> ProcTable:
        """Start the master on the current haproxy.cfg; returns once a worker serves."""
        if self.running:
            raise HaproxyError("HAProxy is already running")
        if self._process is not None:
            self.stop()  # the master died: its workers may still hold the ports
        self._stop_leftover()
        if not self.config_path.exists():
            raise HaproxyError(f"no config at {self.config_path}; write_config first")
        log_size = self._log_size()
        log = open(self.directory / "haproxy.log", "ab")
        in_main_thread = threading.current_thread() is threading.main_thread()
        try:
            self._process = subprocess.Popen(
                [self.binary, "-W", "-S", f"{self.master_socket},mode,600", "-p", str(self.pid_path),
                 "-f", str(self.config_path)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                preexec_fn=_die_with_parent if in_main_thread else None,
            )
        finally:
            log.close()
        _running.add(self)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if not self.running:
                self.stop()
                raise HaproxyError("HAProxy exited at start", self._log_since(log_size))
            table = self._try_show_proc()
            if table is not None and table.current_workers:
                return table
            time.sleep(0.05)
        self.stop()
        raise HaproxyError(f"HAProxy did not start a worker within {self.timeout}s", self._log_since(log_size))

    def reload(self) -> ProcTable:
        """Hitless reload onto haproxy.cfg; returns once the new worker generation is listed."""
        before = self.show_proc()
        old_pids = {worker.pid for worker in before.workers}
        log_size = self._log_size()
        self._master_send("reload", wait_reply=False)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            time.sleep(0.02)
            table = self._try_show_proc()
            if table is None or table.reloads <= before.reloads:
                continue
            if table.failed_reloads > before.failed_reloads:
                raise ReloadFailed("HAProxy failed to load the new config", self._log_since(log_size))
            if any(worker.pid not in old_pids for worker in table.current_workers):
                return table
        raise HaproxyError(f"no new HAProxy worker within {self.timeout}s of the reload", self._log_since(log_size))

    def stop(self) -> None:
        """Stop the master and every worker of its process group; bounded."""
        process, self._process = self._process, None
        _running.discard(self)
        if process is None:
            return
        group = process.pid  # start_new_session: the master leads its own group
        if process.poll() is None:
            try:
                process.send_signal(signal.SIGTERM)  # master and workers stop at once
                process.wait(timeout=self.timeout / 2)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        _kill_group(group)
        try:
            process.wait(timeout=self.timeout / 2)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + self.timeout
        while group_members(group) and time.monotonic() < deadline:
            _kill_group(group)
            time.sleep(0.02)
        if group_members(group):
            raise HaproxyError(f"HAProxy processes {group_members(group)} outlived stop")

    def _stop_leftover(self) -> None:
        """An HAProxy of an earlier run on this directory (the node was killed before it could
        stop it) would keep the ports: stop its whole process group first."""
        try:
            pid = int(self.pid_path.read_text().split()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            group = os.getpgid(pid)
        except (OSError, ValueError, IndexError):
            return
        if str(self.config_path).encode() not in cmdline or group != pid:
            return  # the pid is someone else's now
        _kill_group(pid)
        deadline = time.monotonic() + self.timeout
        while group_members(pid) and time.monotonic() < deadline:
            time.sleep(0.02)

    # ---- the master CLI ----------------------------------------------------------------

    def show_proc(self) -> ProcTable:
        table = None
        deadline = time.monotonic() + self.timeout
        while table is None and time.monotonic() < deadline:
            table = self._try_show_proc()
            if table is None:
                time.sleep(0.02)  # the master refuses connections while it re-executes
        if table is None:
            raise HaproxyError(f"the master CLI {self.master_socket} did not answer `show proc`")
        return table

    def _try_show_proc(self) -> ProcTable | None:
        try:
            table = parse_show_proc(self._master_send("show proc"))
        except OSError:
            return None
        return table if table.master_pid else None

    def _master_send(self, command: str, wait_reply: bool = True) -> str:
        return master_command(self.master_socket, command, min(self.timeout, 2.0), wait_reply)

    def _log_size(self) -> int:
        try:
            return (self.directory / "haproxy.log").stat().st_size
        except OSError:
            return 0

    def _log_since(self, offset: int, limit: int = 4000) -> str:
        try:
            with open(self.directory / "haproxy.log", "rb") as log:
                log.seek(offset)
                return log.read()[-limit:].decode(errors="replace").strip()
        except OSError:
            return ""

    def log_tail(self, size: int = 2000) -> str:
        try:
            return (self.directory / "haproxy.log").read_bytes()[-size:].decode(errors="replace").strip()
        except OSError:
            return ""


@dataclass(frozen=True)
class Converged:
    applied: Applied  # what HAProxy runs now: the `current` of the next call
    plan: Plan
    action: str  # 'runtime' (API commands only), 'unchanged', 'started' or 'reloaded'
    fallback: str | None = None  # why runtime commands gave way to a reload


def converge(process: HaproxyProcess, current: Applied | None, desired: list[Service],
             step: Plan | None = None) -> Converged:
    """One reconcile step: plan (or take `step`, planned from `current` to `desired`), then
    runtime commands or a config swap and reload. A refused runtime command falls back to a
    reload with the same assignment. ConfigRejected (raised) leaves HAProxy and `current` as
    they were."""
    if not process.running:
        current, step = None, None  # whatever ran is gone: start from the config
    if step is None:
        step = plan(current, desired, process.settings)
    fallback = None
    if not step.reload:
        try:
            process.runtime.execute(step.commands)
            return Converged(step.applied(), step, "runtime" if step.commands else "unchanged")
        except RuntimeApiError as error:
            fallback = str(error)
    text = render(desired, process.settings, step.assignment).text
    # after a refused command, reload even an unchanged text: HAProxy's runtime state is not
    # what we think it is
    action = process.apply(text, force_reload=fallback is not None)
    return Converged(step.applied(), step, action, fallback)


def group_members(group: int) -> list[int]:
    """The live (not zombie) processes of a process group, read from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "(comm)": state ppid pgrp ...
        if int(fields[2]) == group and fields[0] != "Z":
            members.append(int(entry))
    return members


def _kill_group(group: int) -> None:
    try:
        os.killpg(group, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _die_with_parent() -> None:
    # In the child before exec: SIGTERM to HAProxy's master if this process dies. (Only from
    # the main thread: the signal follows the thread that forked, not the process.)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


@atexit.register
def _stop_everything() -> None:
    for process in list(_running):
        try:
            process.stop()
        except HaproxyError:
            pass


__all__ = [
    "ConfigRejected", "Converged", "HAPROXY", "HaproxyError", "HaproxyProcess", "ProcTable", "ReloadFailed",
    "bind_failures", "check_config", "converge", "group_members",
]
