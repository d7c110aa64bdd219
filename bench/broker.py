"""The Kafka a benchmark runs against: the one given, or a broker of its own for the run."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from runtime.kafka import cluster


@contextmanager
def bench_kafka(bootstrap: str | None, base_port: int) -> Iterator[str]:
    """Yields `bootstrap`, or starts one broker on `base_port` (removed afterwards)."""
    if bootstrap:
        yield bootstrap
        return
    # The test suite's JVM flags favour start-up time; a benchmark wants the broker at full speed.
    os.environ.setdefault("WAYFINDER_KAFKA_JVM_FLAGS", "")
    kafka_dir = Path(tempfile.mkdtemp(prefix="wayfinder-bench-kafka-"))
    try:
        yield cluster.up(kafka_dir, base_port=base_port)
    finally:
        cluster.down(kafka_dir)
        shutil.rmtree(kafka_dir, ignore_errors=True)
