"""A DNS worker process (the worker's side of appliers/dns/workers.py): a node with only the
dns role, started by the node's own process with `python -m appliers.dns.worker_process
PARENT_PID INDEX`. It reads its `Start` and then the exported state of the roles it waits for
from stdin, reports `listening` and `ready` on stdout, and stops when the node's process goes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import pickle
import signal
import sys
import threading
from collections.abc import Sequence

import msgspec

from appliers.dns.metrics import REPORT_S, encode_report
from appliers.dns.workers import (_LENGTH, LISTENING, MAX_FRAME, READY, WORKER_EXIT_DEADLINE_S, Start, Update)
from appliers.node import DEPENDENCIES, Node
from runtime.kafka import client_config
from runtime.reconcile import Dependency, ReconcileLoop

log = logging.getLogger(__name__)


class RemoteRole:
    """In a worker, a role that runs in the node's own process, as the dns loop sees it: its
    readiness (`ready`, what `ReconcileLoop.waits_for` reads) and its exported state, fed to
    the waiting loop with the dependency's `take` on every update."""

    def __init__(self, dependency: Dependency, waiting: ReconcileLoop) -> None:
        self.dependency, self.waiting = dependency, waiting
        self.ready = asyncio.Event()
        self.state: dict[str, object] = {}
        self._decoder = msgspec.json.Decoder(dict[str, dependency.exported or object])

    def take(self, update: Update) -> None:
        changed = self._decoder.decode(update.changed)
        if changed or update.gone:
            for key in update.gone:
                self.state.pop(key, None)
            self.state.update(changed)
            self.waiting.feed(self.dependency.take(self.waiting, self.state))
        if update.ready:
            self.ready.set()


def die_with_parent(parent: int) -> None:
    """SIGTERM to this process when the thread that started it exits (Linux), and exit now if
    that already happened."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(0)


def _read_exactly(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, left)
        if not chunk:
            raise EOFError("the node closed the channel")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def worker_main(argv: Sequence[str]) -> int:
    parent, index = int(argv[0]), int(argv[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the node stops its workers
    die_with_parent(parent)
    reports = os.dup(1)
    os.dup2(2, 1)  # anything printed goes to the log, never into the reports
    try:
        size, = _LENGTH.unpack(_read_exactly(0, _LENGTH.size))
        start: Start = pickle.loads(_read_exactly(0, size))
    except EOFError:
        return 0
    logging.basicConfig(level=start.log_level, stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)-7s [dns worker {index}] %(name)s: %(message)s")
    import uvloop

    try:
        uvloop.run(_serve(start, reports))
    except Exception:
        log.exception("dns worker %d failed", index)
        return 1
    return 0


async def _serve(start: Start, reports: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    # Before the worker makes any client.
    client_config.install(start.options.kafka_settings, source=start.options.kafka_config_path)
    node = Node(dataclasses.replace(start.options, roles=("dns",), dns_worker=start.index))
    dns = node.dns
    dns.role.listen_when_ready = start.listen_when_ready
    remotes = {d.waits_for: RemoteRole(d, dns) for d in DEPENDENCIES
               if d.role == "dns" and d.waits_for in start.shared}
    dns.waits_for += tuple(remotes.values())

    reader = asyncio.StreamReader(limit=MAX_FRAME)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(0, "rb", buffering=0))

    async def follow() -> None:
        try:
            while True:  # until EOF (the node's process is gone) or cancelled
                size, = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
                update = msgspec.json.decode(await reader.readexactly(size), type=Update)
                remotes[update.role].take(update)
        except asyncio.IncompleteReadError:
            log.warning("the node's process is gone: stopping")
        stop.set()

    async def report() -> None:
        await dns.role.listening.wait()
        os.write(reports, LISTENING + b"\n")
        await dns.ready.wait()
        os.write(reports, READY + b"\n")

    async def report_metrics() -> None:
        from appliers.metrics import worker_report

        while True:  # until cancelled at stop
            await asyncio.sleep(REPORT_S)
            os.write(reports, encode_report(worker_report(dns)) + b"\n")

    def deadline() -> None:
        timer = threading.Timer(WORKER_EXIT_DEADLINE_S, os._exit, (1,))
        timer.daemon = True
        timer.start()

    helpers = [loop.create_task(follow()), loop.create_task(report()), loop.create_task(report_metrics())]
    stopping = loop.create_task(stop.wait())
    stopping.add_done_callback(lambda _: deadline())
    try:
        await node.run(stop)
    finally:
        stop.set()
        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, stopping, return_exceptions=True)


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
