"""Readiness marks: how far each stage of the pipeline has got, published through Kafka.

Readiness is a chain (ARCHITECTURE.md). A producer marks when its tables equal the cluster
(after its start-up diff and after every reconnect), with the end offsets of its tables at
that moment. The active processor marks which source positions its outputs reflect, and
whether they reflect every producer's last full sync. A node role is ready only once it has
read its derived table past a processor mark that says so. Every mark is rewritten on a
heartbeat, so a reader can also tell a silent upstream from a quiet cluster.
"""

from __future__ import annotations

import os
import socket

from msgspec import Struct

# How often a writer rewrites its mark when nothing else changed, and how old a mark may get
# before its writer counts as silent.
HEARTBEAT_S = 5.0
STALE_AFTER_S = 30.0

# topic alias -> partition -> offset (the next offset to read)
Positions = dict[str, dict[int, int]]


def producer_key(source: str) -> str:
    """The key of a producer's mark: ``producer/mesos`` or ``producer/marathon``."""
    return f"producer/{source}"


PROCESSOR_KEY = "processor"


def instance_name() -> str:
    """A mark's ``instance``: ``host:pid:random``, which tells two runs apart even when a pid
    is reused."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


class Mark(Struct, frozen=True):
    """One stage's progress. Key: ``producer/mesos``, ``producer/marathon`` or ``processor``.

    - ``role``: ``producer`` or ``processor``; ``instance`` names the process that wrote it
      (host, pid and a random part), ``started_at`` when that process started.
    - ``heartbeat_at``: when it was written; older than ``STALE_AFTER_S`` means the writer is
      silent.
    - ``in_sync``: a producer's tables equal the cluster now (its stream is live after a full
      sync); for the processor, that it is the active one and is consuming.
    - ``synced_at``: when the producer last completed a full sync; for the processor, when one
      of its outputs first reflected synced sources (its first entry in ``ready_outputs``).
    - ``positions``: for a producer, the end offsets of its tables right after its last full
      sync; for the processor, the source positions its published outputs reflect.
    - ``ready`` (processor): rebuilt, and ``positions`` reach every producer's ``positions``:
      every output in ``ready_outputs``.
    - ``lag`` (processor): source records not yet reflected in its outputs.
    - ``epoch`` (processor): the election generation that made it active.
    - ``ready_outputs`` (processor): the output aliases (``dns``, ``haproxy``, ``vips``, sorted)
      whose sources' producers all have synced marks that ``positions`` reach. An output
      needs only its own producers: a cluster without Marathon still gets ``dns`` and ``vips``.
      Empty in a mark from a processor older than this field: its ``ready`` speaks for all.
    """

    role: str
    instance: str
    started_at: float
    heartbeat_at: float
    in_sync: bool
    synced_at: float | None = None
    positions: Positions = {}
    ready: bool = False
    lag: int = 0
    epoch: int = 0
    ready_outputs: list[str] = []
