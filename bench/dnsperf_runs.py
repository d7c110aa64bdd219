"""Measuring a DNS server with dnsperf, for bench/dns_throughput.py: wait for its first
answer, saturate it, time a fixed rate with per-query latencies, read the server's CPU, and
stop what was started. Not a bench itself."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DNSPERF = "/usr/bin/dnsperf"
SERVER_CPU, CLIENT_CPU = 0, 1
START_TIMEOUT = 30.0  # seconds for a server to answer its first query
PINNING = True  # dns_throughput --no-pin turns it off


def pin(cpu: int | str, needed: int = 2) -> list[str]:
    """A taskset prefix (`cpu`: a CPU or a taskset list) when there are `needed` CPUs, so the
    load generator can be kept apart."""
    if PINNING and os.cpu_count() and os.cpu_count() >= needed and shutil.which("taskset"):
        return ["taskset", "-c", str(cpu)]
    return []


def wait_answering(port: int, process: subprocess.Popen) -> None:
    """Until the server answers one query for svc0 (bounded by START_TIMEOUT)."""
    query = (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
             b"\x04svc0\x08marathon\x05mesos\x00\x00\x01\x00\x01")
    deadline = time.monotonic() + START_TIMEOUT
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.settimeout(0.2)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode} before answering")
            probe.sendto(query, ("127.0.0.1", port))
            try:
                reply = probe.recv(512)
            except (TimeoutError, ConnectionRefusedError):
                continue
            if reply[:2] == query[:2] and reply[3] & 0x0F == 0 and reply[7] == 1:
                return
    raise RuntimeError(f"no answer on port {port} within {START_TIMEOUT} s")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def dnsperf(port: int, queryfile: Path, seconds: float, *, rate: int | None = None,
            verbose: bool = False, clients: int = 1, outstanding: int = 100,
            prefix: list[str] | None = None) -> str:
    prefix = pin(CLIENT_CPU) if prefix is None else prefix
    command = [*prefix, DNSPERF, "-s", "127.0.0.1", "-p", str(port), "-d", str(queryfile),
               "-l", str(seconds), "-c", str(clients), "-q", str(outstanding)]
    if rate:
        command += ["-Q", str(rate)]
    if verbose:
        command.append("-v")
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode:
        raise RuntimeError(f"dnsperf failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def summary(text: str) -> dict:
    """The figures of dnsperf's closing summary."""
    def number(pattern: str) -> float:
        match = re.search(pattern, text)
        if match is None:
            raise RuntimeError(f"dnsperf output lacks {pattern!r}:\n{text[-2000:]}")
        return float(match.group(1))

    average = re.search(r"Average Latency \(s\):\s+([\d.]+) \(min ([\d.]+), max ([\d.]+)\)", text)
    rcodes = re.search(r"Response codes:\s+(.*)", text)
    return {
        "qps": round(number(r"Queries per second:\s+([\d.]+)")),
        "sent": int(number(r"Queries sent:\s+(\d+)")),
        "completed": int(number(r"Queries completed:\s+(\d+)")),
        "lost": int(number(r"Queries lost:\s+(\d+)")),
        "avg_ms": round(float(average.group(1)) * 1000, 3),
        "max_ms": round(float(average.group(3)) * 1000, 3),
        "rcodes": rcodes.group(1).strip() if rcodes else "",
    }


def percentiles(text: str) -> dict:
    """p50/p99/p99.9 from `dnsperf -v` lines: `> NOERROR name A 0.000123`."""
    latencies = sorted(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                       if line.startswith("> ") and re.search(r" \d+\.\d+$", line))
    if not latencies:
        raise RuntimeError("dnsperf -v printed no per-query latencies")

    def at(fraction: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(fraction * len(latencies)))] * 1000, 3)

    return {"p50_ms": at(0.50), "p99_ms": at(0.99), "p999_ms": at(0.999), "samples": len(latencies)}


def tree_cpu_seconds(pid: int) -> float:
    """CPU of `pid` and of its children (a node's DNS workers), those alive now."""
    total = cpu_seconds(pid)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            continue
    return total


def measure(name: str, process: subprocess.Popen, port: int, queryfile: Path, seconds: float,
            latency_qps: int, *, clients: int = 1, outstanding: int = 100, client_pin: list[str] | None = None,
            cpu=cpu_seconds) -> dict:
    wait_answering(port, process)
    flags = {"clients": clients, "outstanding": outstanding, "prefix": client_pin}
    dnsperf(port, queryfile, 1, **flags)  # warm-up: caches filled, sockets settled
    before, started = cpu(process.pid), time.monotonic()
    saturation = summary(dnsperf(port, queryfile, seconds, **flags))
    used = cpu(process.pid) - before
    cpu = used / (time.monotonic() - started)
    latency_run = min(seconds, 5)
    steady = dnsperf(port, queryfile, latency_run, rate=latency_qps, verbose=True, **flags)
    return {"server": name, **saturation, "server_cpu_pct": round(cpu * 100),
            "server_cpu_us_per_query": round(used * 1e6 / max(1, saturation["completed"]), 2),
            **percentiles(steady), "latency_at_qps": latency_qps,
            "latency_run_s": latency_run, "latency_lost": summary(steady)["lost"]}


def stop(process: subprocess.Popen | None) -> str:
    """Stop one process started here (TERM, then KILL after 5 s); its stdout."""
    if process is None or process.poll() is not None:
        return process.stdout.read() if process and process.stdout else ""
    process.send_signal(signal.SIGTERM)
    try:
        out, _ = process.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate(timeout=5)
    return out or ""
