"""Starting `wayfinder` as a real process, and timing how it stops on a signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

WAYFINDER = str(Path(sys.executable).with_name("wayfinder"))
STOP_BOUND_S = 5.0


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([WAYFINDER, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})}, cwd=Path(__file__).resolve().parents[2])


def wait_for_line(proc: subprocess.Popen, needle: str, timeout: float) -> list[str]:
    """stderr lines until one contains `needle` (AssertionError at `timeout` or at the end)."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return seen
    raise AssertionError(f"no line with {needle!r} in:\n{''.join(seen)}")


def stop_within_bound(proc: subprocess.Popen, signum: int) -> tuple[float, int]:
    """Send `signum`; (seconds until exit, exit code). Kills it and fails past the bound."""
    sent = time.monotonic()
    proc.send_signal(signum)
    try:
        code = proc.wait(STOP_BOUND_S + 2)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"{signal.Signals(signum).name} did not stop it in {STOP_BOUND_S + 2} s") from None
    return time.monotonic() - sent, code
