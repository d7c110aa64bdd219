"""Reading the status topic: the newest readiness mark per key (schemas.status).

`read_marks` reads the topic once (for `wayfinder status`); `StatusWatch` follows it for a
node, in a thread of its own, and is the node roles' ProcessorGate: ``processor_ready``
turns True the first time a processor mark says ready, and stays True (a ready role stays
ready; the marks only say how current the upstream is after that).
"""

from __future__ import annotations

import asyncio
import logging
import threading

import msgspec

from runtime.blocking import run_until_stopped
from runtime.kafka.reader import ConsumedRecord, follow, read_table
from schemas import codec
from schemas.status import PROCESSOR_KEY, Mark

log = logging.getLogger(__name__)


def decode_mark(key: str, value: bytes) -> Mark | None:
    try:
        return codec.decode(value, Mark)
    except msgspec.ValidationError as error:
        log.error("status: mark %s does not match its schema, ignored: %s", key, error)
        return None


def read_marks(bootstrap: str, topic: str, timeout: float = 30.0) -> dict[str, Mark]:
    """The newest mark of every key, read to the end of the topic."""
    marks = {}
    for key, value in read_table(bootstrap, topic, timeout).items():
        mark = decode_mark(key, value)
        if mark is not None:
            marks[key] = mark
    return marks


class StatusWatch:
    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.marks: dict[str, Mark] = {}
        self.processor_ready = False

    def take(self, record: ConsumedRecord) -> None:
        """One record of the status topic (from the follower thread, or a test)."""
        if record.key is None:
            return
        if record.value is None:
            self.marks.pop(record.key, None)
            return
        mark = decode_mark(record.key, record.value)
        if mark is None:
            return
        self.marks[record.key] = mark
        if record.key == PROCESSOR_KEY and mark.ready and not self.processor_ready:
            log.info("status: the processor (%s) is ready", mark.instance)
            self.processor_ready = True

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the topic from its beginning until `stop`."""
        def follow_marks(halt: threading.Event) -> None:
            for record in follow(self.bootstrap, self.topic, from_beginning=True, stop=halt, wait_for_topic=True):
                self.take(record)

        await run_until_stopped(stop, follow_marks)
