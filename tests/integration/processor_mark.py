"""A ready processor mark for tests that run the real processor, until it writes its own.

TODO(processor failover, issue 8 §2): the processor engineer's change makes the active
processor write the `processor` mark itself, in the transaction of the records it reflects.
Until that lands, a test that needs ready nodes writes one here, and only when the processor
has not written one within a few seconds; once it does, this writes nothing and can go.
"""

from __future__ import annotations

import asyncio
import time

from runtime.kafka.status import read_marks
from runtime.kafka.writer import KafkaSink
from schemas import codec
from schemas.catalog import Catalog
from schemas.headers import Observation
from schemas.status import PROCESSOR_KEY, Mark


async def ensure_processor_mark(bootstrap: str, catalog: Catalog, wait_s: float = 5.0) -> bool:
    """Write a ready processor mark unless the processor wrote one; True when this wrote it."""
    topic = catalog.topic("status")
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        mark = (await asyncio.to_thread(read_marks, bootstrap, topic.name)).get(PROCESSOR_KEY)
        if mark is not None and mark.ready:
            return False
        await asyncio.sleep(0.25)
    now = time.time()
    sink = KafkaSink(bootstrap, client_id="test-processor-mark")
    try:
        sink.publish(topic.name, PROCESSOR_KEY,
                     codec.encode(Mark("processor", "test-stand-in", now, now, True, synced_at=now, ready=True)),
                     Observation.now().headers(topic.schema_id))
    finally:
        await asyncio.to_thread(sink.close)
    return True
