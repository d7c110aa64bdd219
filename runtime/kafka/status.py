"""Reading the status topic: the newest readiness mark per key (schemas.status).

`read_marks` reads the topic once (for `wayfinder status`); `StatusWatch` follows it for a
node, in a thread of its own. Each of the node's loops gates on its own table through a
`TableGate` (a ProcessorGate): ready the first time a processor mark lists that table in
``ready_outputs`` (or, from an older processor, says ``ready``), and ready for good after that
(a ready role stays ready; the marks only say how current the upstream is). So a node's dns
role serves a cluster without Marathon while its haproxy role waits for Marathon.
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
        self.processor_ready = False  # every output ready
        self.ready_tables: set[str] = set()  # output aliases a processor mark has said are ready

    def table_ready(self, alias: str) -> bool:
        return self.processor_ready or alias in self.ready_tables

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
        if record.key != PROCESSOR_KEY:
            return
        if newly := sorted(set(mark.ready_outputs) - self.ready_tables):
            log.info("status: the processor (%s) is ready for %s", mark.instance, ", ".join(newly))
            self.ready_tables.update(newly)
        if mark.ready and not self.processor_ready:
            log.info("status: the processor (%s) is ready", mark.instance)
            self.processor_ready = True

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the topic from its beginning until `stop`."""
        def follow_marks(halt: threading.Event) -> None:
            for record in follow(self.bootstrap, self.topic, from_beginning=True, stop=halt, wait_for_topic=True):
                self.take(record)

        await run_until_stopped(stop, follow_marks)


class TableGate:
    """The ProcessorGate of the loop that follows one derived table (`alias`): it waits only
    for the producers that table is derived from."""

    def __init__(self, watch: StatusWatch, alias: str) -> None:
        self.watch, self.alias = watch, alias

    @property
    def processor_ready(self) -> bool:
        return self.watch.table_ready(self.alias)
