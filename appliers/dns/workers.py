"""The node's DNS server on every core: `--dns-workers N` runs N worker processes that serve
the same UDP and TCP port (SO_REUSEPORT; the kernel spreads clients over them by a hash of
their address and port).

Each worker is a whole dns role: its own follower of the `dns` topic, its own status watch,
zones, reconcile loop and server (appliers/node.Node with the dns role only, the same code as
a single-process node). So every worker answers the same zones, each with today's readiness
rules: SERVFAIL for cluster names until its loop is ready. Workers converge independently;
for the moment between two of them applying one change, a client may see either answer.

What the dns role takes from another role (`appliers/node.DEPENDENCIES`: the l4lb role's VIPs
in the kernel, for VIP names, and its readiness) stays in the node's own process, which alone
programs the kernel: after each pass of that role the node sends what changed in its exported
state, and once it is ready says so, to every worker over the worker's stdin (length-prefixed
frames). A worker feeds that to its dns loop as the single-process node does, and its dns role
waits for the same readiness. So a VIP's name is served only once the kernel has the VIP, by
every worker.

Supervision (the node's own process, `DnsWorkers`):
- a worker that exits is started again after a bounded backoff (`restart_delay`: 0.5 s,
  doubling to 30 s; back to 0.5 s after a minute of running); a restarted worker binds its
  sockets only once ready, so meanwhile its share of clients goes to the serving ones, never
  to SERVFAIL;
- a worker of the first start that exits before it listened (port taken, bad options) stops
  the node, as a single-process node fails at start;
- SIGTERM/SIGINT of the node: every worker gets SIGTERM, then SIGKILL after 10 s;
- no orphans: a worker stops when its stdin reaches EOF (the node's process is gone, however
  it died) and has PR_SET_PDEATHSIG set to SIGTERM; it ignores SIGINT (the node stops it).
A worker reports `listening` and `ready` on its stdout, and its metrics every second (a
`metrics` line; appliers/dns/metrics.py); its logs go to stderr as the node's.
The worker's side is appliers/dns/worker_process.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import pickle
import signal
import struct
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import msgspec

from appliers.dns.metrics import WorkerTotals, decode_report
from appliers.options import NodeOptions
from runtime.blocking import sleep_or_stop

if TYPE_CHECKING:
    from runtime.reconcile import Dependency, ReconcileLoop

log = logging.getLogger(__name__)

RESTART_BASE_S = 0.5
RESTART_MAX_S = 30.0
HEALTHY_AFTER_S = 60.0  # a worker that ran this long restarts from the shortest delay again
STOP_GRACE_S = 10.0  # SIGTERM, then SIGKILL after this long
WORKER_EXIT_DEADLINE_S = 20.0  # a worker told to stop leaves by itself within this
_LENGTH = struct.Struct("!I")
MAX_FRAME = 1 << 30

LISTENING, READY = b"listening", b"ready"
WORKER_MODULE = "appliers.dns.worker_process"  # the worker's side: `python -m` runs it


# -- pure ------------------------------------------------------------------------------------

def restart_delay(failures: int) -> float:
    """Seconds before restarting a worker that failed `failures` times in a row (>= 1)."""
    return min(RESTART_MAX_S, RESTART_BASE_S * 2 ** min(max(0, failures - 1), 16))


def changes(previous: Mapping[str, object], current: Mapping[str, object]) -> tuple[dict, list[str]]:
    """(entries set or changed, keys gone) from `previous` to `current`."""
    changed = {key: value for key, value in current.items() if previous.get(key) != value}
    gone = [key for key in previous if key not in current]
    return changed, gone


def frame(payload: bytes) -> bytes:
    if len(payload) > MAX_FRAME:
        raise ValueError(f"a frame of {len(payload)} bytes is over {MAX_FRAME}")
    return _LENGTH.pack(len(payload)) + payload


class Update(msgspec.Struct, frozen=True):
    """A change of one role's exported state (`changed`: key -> value as JSON, `gone`: keys),
    and whether that role is ready."""

    role: str
    changed: msgspec.Raw
    gone: list[str]
    ready: bool


@dataclasses.dataclass(frozen=True)
class Start:
    """What a worker starts with (the first frame on its stdin)."""

    options: NodeOptions
    index: int
    listen_when_ready: bool
    shared: tuple[str, ...]  # roles of the node's own process whose state this worker takes
    log_level: int


# -- the node's side ---------------------------------------------------------------------------

class _Shared:
    """One role's exported state as last sent to the workers."""

    def __init__(self, dependency: Dependency) -> None:
        self.dependency = dependency
        self.state: dict[str, object] = {}
        self.ready = False

    def update(self, changed: Mapping[str, object], gone: Sequence[str]) -> bytes:
        return msgspec.json.encode(Update(self.dependency.waits_for, msgspec.Raw(msgspec.json.encode(changed)),
                                          list(gone), self.ready))


class Worker:
    """One running worker process, as the node sees it."""

    def __init__(self, index: int, process: asyncio.subprocess.Process) -> None:
        self.index, self.process = index, process
        self.started = time.monotonic()
        self.listening = False
        self.ready = False
        self.samples: dict = {}  # its metrics as last reported (appliers/dns/metrics.py)
        self.reading = asyncio.get_running_loop().create_task(self._read_reports())

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, payload: bytes) -> None:
        stdin = self.process.stdin
        if self.process.returncode is None and stdin is not None and not stdin.is_closing():
            try:
                stdin.write(frame(payload))
            except (BrokenPipeError, ConnectionResetError):
                pass  # it died: the supervisor sees the exit

    async def _read_reports(self) -> None:
        stdout = self.process.stdout
        while stdout is not None:  # ends at EOF: the worker is gone
            line = (await stdout.readline()).strip()
            if not line:
                return
            if line == LISTENING:
                self.listening = True
                log.info("dns worker %d (pid %d): listening", self.index, self.pid)
            elif line == READY:
                self.ready = True
                log.info("dns worker %d (pid %d): ready", self.index, self.pid)
            elif (samples := decode_report(line)) is not None:
                self.samples = samples

    async def stop(self) -> None:
        """SIGTERM, SIGKILL after STOP_GRACE_S; returns once the process is reaped."""
        process = self.process
        if process.returncode is None:
            try:
                process.terminate()
                await asyncio.wait_for(process.wait(), STOP_GRACE_S)
            except asyncio.TimeoutError:
                log.warning("dns worker %d (pid %d) ignored SIGTERM for %.0fs: killing it",
                            self.index, self.pid, STOP_GRACE_S)
                process.kill()
                await process.wait()
            except ProcessLookupError:
                pass
        await self._closed()

    async def _closed(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.reading.cancel()
        await asyncio.gather(self.reading, return_exceptions=True)


class WorkerFailed(RuntimeError):
    pass


Spawn = Callable[[int], Awaitable[asyncio.subprocess.Process]]


async def spawn_worker(index: int) -> asyncio.subprocess.Process:
    """The seam: a fresh interpreter running `worker_main` (never a fork of the node, whose
    Kafka clients run threads), stdin and stdout piped to the node, stderr shared."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", WORKER_MODULE, str(os.getpid()), str(index),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)


class DnsWorkers:
    """Runs `options.dns_workers` DNS worker processes until `stop`, restarting any that exits,
    and shares the state of the `shared` dependencies' roles with them."""

    def __init__(self, options: NodeOptions, shared: Sequence[Dependency] = (), *,
                 spawn: Spawn = spawn_worker) -> None:
        self.options = options
        self.count = options.dns_workers
        self.shared = {dependency.waits_for: _Shared(dependency) for dependency in shared}
        self.spawn = spawn
        self.workers: dict[int, Worker] = {}  # index -> the running process
        self.restarts = 0
        self.totals = WorkerTotals()  # the node's metrics: every worker's, past ones included
        self._loops: dict[str, ReconcileLoop] = {}

    def wire(self, loops: Mapping[str, ReconcileLoop]) -> None:
        """After each pass of a shared role's loop, send its exported state's changes."""
        for name, shared in self.shared.items():
            loop = loops[name]
            self._loops[name] = loop
            loop.after_apply(lambda shared=shared, loop=loop: self._export(shared, loop))

    def _export(self, shared: _Shared, loop: ReconcileLoop) -> None:
        current = dict(shared.dependency.export(loop))
        changed, gone = changes(shared.state, current)
        if changed or gone:
            shared.state = current
            self._broadcast(shared.update(changed, gone))

    def _broadcast(self, payload: bytes) -> None:
        for worker in self.workers.values():
            worker.send(payload)

    async def run(self, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(self._keep(index, stop)) for index in range(self.count)]
        tasks += [asyncio.create_task(self._relay_ready(name, loop, stop)) for name, loop in self._loops.items()]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            stop.set()  # one worker failing at start stops the node, as a single process would
            results = await asyncio.gather(*tasks, return_exceptions=True)
        failed = [result for result in results if isinstance(result, BaseException)]
        if failed:
            raise failed[0]

    async def _relay_ready(self, name: str, loop: ReconcileLoop, stop: asyncio.Event) -> None:
        if not await _either(loop.ready.wait(), stop):
            return
        shared = self.shared[name]
        shared.ready = True
        self._broadcast(shared.update({}, ()))

    async def _keep(self, index: int, stop: asyncio.Event) -> None:
        """Worker `index`, started again whenever it exits, until `stop`."""
        failures, first = 0, True
        while not stop.is_set():
            worker = await self._start(index, listen_when_ready=not first)
            try:
                await _either(worker.process.wait(), stop)
            finally:
                if stop.is_set() or worker.process.returncode is None:
                    await worker.stop()
            if stop.is_set():
                return
            await worker._closed()
            del self.workers[index]
            self.totals.retire(worker.samples)
            how = _exit_text(worker.process.returncode)
            if first and not worker.listening:
                raise WorkerFailed(f"dns worker {index} {how} before it listened (see its log above)")
            lived = time.monotonic() - worker.started
            failures = 1 if lived >= HEALTHY_AFTER_S else failures + 1
            delay = restart_delay(failures)
            log.warning("dns worker %d (pid %d) %s after %.1fs; restarting in %.1fs",
                        index, worker.pid, how, lived, delay)
            first = False
            self.restarts += 1
            await sleep_or_stop(stop, delay)

    async def _start(self, index: int, *, listen_when_ready: bool) -> Worker:
        process = await self.spawn(index)
        worker = Worker(index, process)
        start = Start(self.options, index, listen_when_ready, tuple(self.shared),
                      logging.getLogger().getEffectiveLevel())
        worker.send(pickle.dumps(start))
        for shared in self.shared.values():  # the state so far, then every change like the others
            worker.send(shared.update(shared.state, ()))
        self.workers[index] = worker
        log.info("dns worker %d: pid %d%s", index, worker.pid, " (listens once ready)" if listen_when_ready else "")
        return worker


async def _either(waited: Awaitable, stop: asyncio.Event) -> bool:
    """Wait for `waited` or `stop`; True when `waited` finished."""
    task = asyncio.ensure_future(waited)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (task, stopping):
            pending.cancel()
        await asyncio.gather(task, stopping, return_exceptions=True)
    return task.done() and not task.cancelled()


def _exit_text(code: int | None) -> str:
    if code is None:
        return "is still running"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"
