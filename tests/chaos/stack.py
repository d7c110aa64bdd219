"""The whole pipeline as real processes, for the chaos and cold-start suites.

simulator, producer, N processors and one node each run as their own `wayfinder` process
(so each can be killed with SIGKILL, paused with SIGSTOP, and started again), against a real
Kafka the test gives. The node's DNS server listens on loopback; with root, its l4lb role
programs nftables inside a network namespace the stack makes and removes.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from runtime.kafka.reader import read_table
from schemas import codec
from schemas.catalog import Catalog
from schemas.status import PROCESSOR_KEY, Mark
from runtime.ports import free_port, free_udp_and_tcp_port

WAYFINDER = str(Path(sys.executable).with_name("wayfinder"))
# The processors' election sessions: our broker accepts 1 s and up (runtime/kafka/node.py).
SESSION_TIMEOUT_MS = 2000


@dataclass
class Process:
    name: str
    args: list[str]
    log: Path
    popen: subprocess.Popen | None = None
    starts: int = 0

    def start(self) -> None:
        assert self.popen is None or self.popen.poll() is not None, f"{self.name} already runs"
        self.starts += 1
        with open(self.log, "ab") as out:
            out.write(f"\n===== start {self.starts} at {time.time():.3f}\n".encode())
            out.flush()
            # Its own session: a SIGKILL of the test run's group leaves nothing behind it.
            self.popen = subprocess.Popen([WAYFINDER, "--log-level", "info", *self.args], stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None and self.popen.poll() is None else None

    def signal(self, sig: int) -> None:
        if self.pid is not None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL: no goodbye, no flush, no leaving the group."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)

    def stop(self, timeout: float = 20.0) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGCONT)  # a paused process cannot handle SIGTERM
        self.popen.terminate()
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(10)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Stack:
    bootstrap: str
    workdir: Path
    mesos_state: Path
    processors: int = 2
    with_kernel: bool = False  # the node's l4lb role too, in a namespace of its own (needs root)
    catalog: Catalog = field(default_factory=lambda: Catalog(f"chaos{secrets.token_hex(4)}"))
    processes: dict[str, Process] = field(default_factory=dict)
    netns: str | None = None
    # On a secured Kafka: each role's client config (--kafka-config), keyed producer, processor
    # and node (runtime/kafka/secure.py writes them).
    role_configs: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.mesos_port, self.marathon_port, self.dns_port = free_port(), free_port(), free_udp_and_tcp_port()
        namespace = ["--bootstrap", self.bootstrap, "--namespace", self.catalog.namespace]

        def as_role(role: str) -> list[str]:
            config = self.role_configs.get(role)
            return [*namespace, "--kafka-config", str(config)] if config else namespace

        if self.with_kernel:
            self.netns = f"wf-chaos-{secrets.token_hex(3)}"
        self._add("simulator", "simulate", f"--mesos-listen=127.0.0.1:{self.mesos_port}",
                  f"--marathon-listen=127.0.0.1:{self.marathon_port}", f"--mesos-state={self.mesos_state}")
        self._add("producer", "produce", *as_role("producer"), "--mesos", f"http://127.0.0.1:{self.mesos_port}",
                  "--marathon", f"http://127.0.0.1:{self.marathon_port}")
        for n in range(1, self.processors + 1):
            self._add(f"processor-{n}", "process", *as_role("processor"), "--session-timeout-ms", str(SESSION_TIMEOUT_MS))
        roles = "l4lb,dns" if self.with_kernel else "dns"
        node = ["node", *as_role("node"), "--node-id", "chaos-node", "--agent-ip", "127.0.0.1", "--roles", roles,
                "--dns-listen", f"127.0.0.1:{self.dns_port}", "--resync-interval", "5"]
        if self.netns:
            node += ["--netns", self.netns]
        self._add("node", *node)

    def _add(self, name: str, *args: str) -> None:
        self.processes[name] = Process(name, list(args), self.workdir / f"{name}.log")

    def __getitem__(self, name: str) -> Process:
        return self.processes[name]

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, *names: str) -> None:
        if self.netns and not Path(f"/run/netns/{self.netns}").exists():
            subprocess.run(["ip", "netns", "add", self.netns], check=True)
            subprocess.run(["ip", "-n", self.netns, "link", "set", "lo", "up"], check=True)
        for name in names or self.processes:
            self.processes[name].start()

    def close(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop()
        if self.netns:
            subprocess.run(["ip", "netns", "del", self.netns], check=False)

    def logs(self) -> str:
        return "\n".join(f"----- {p.name}\n{p.tail()}" for p in self.processes.values())

    # -- the simulated cluster ------------------------------------------------------------

    def control(self, method: str, path: str, body: object = None, timeout: float = 10.0) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://127.0.0.1:{self.marathon_port}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return json.loads(reply.read() or b"{}")

    def await_simulator(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.control("GET", "/sim/state")
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the simulator did not answer\n{self.logs()}") from None
                time.sleep(0.1)

    # -- what Kafka holds -----------------------------------------------------------------

    def table(self, alias: str) -> dict[str, bytes]:
        return read_table(self.bootstrap, self.catalog.topic(alias).name, timeout=60)

    def marks(self) -> dict[str, Mark]:
        return {key: codec.decode(value, Mark) for key, value in self.table("status").items()}

    def active_processor(self) -> Process | None:
        """The processor whose pid the newest processor mark names (instance = host:pid:...)."""
        mark = self.marks().get(PROCESSOR_KEY)
        if mark is None:
            return None
        pid = int(mark.instance.split(":")[1])
        return next((p for name, p in self.processes.items() if name.startswith("processor-") and p.pid == pid), None)

    def programmed(self) -> list[dict]:
        """`wayfinder vips --netns ... --json`: the kernel next to the vips topic."""
        out = subprocess.run([WAYFINDER, "vips", "--bootstrap", self.bootstrap, "--namespace", self.catalog.namespace,
                              "--netns", self.netns, "--json"], capture_output=True, timeout=60, check=True)
        return orjson.loads(out.stdout)
