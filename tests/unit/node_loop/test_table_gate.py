"""Each node loop gates on its own table (runtime/kafka/status.py TableGate): a processor mark
that lists the table in `ready_outputs`, or, from a processor older than that field, `ready`."""

from __future__ import annotations

from runtime.kafka.reader import ConsumedRecord
from runtime.kafka.status import StatusWatch, TableGate
from schemas import codec
from schemas.status import PROCESSOR_KEY, Mark


def take(watch: StatusWatch, mark: Mark, key: str = PROCESSOR_KEY) -> None:
    watch.take(ConsumedRecord("status", 0, 0, 0, key, codec.encode(mark), []))


def processor(ready: bool = False, ready_outputs: tuple[str, ...] = ()) -> Mark:
    return Mark("processor", "p:1:ab", 1.0, 1.0, True, ready=ready, ready_outputs=list(ready_outputs))


def gates(watch: StatusWatch) -> dict[str, bool]:
    return {alias: TableGate(watch, alias).processor_ready for alias in ("vips", "dns", "haproxy")}


def test_a_table_is_ready_once_a_mark_lists_it_and_stays_ready():
    watch = StatusWatch("unused:9092", "status")
    assert gates(watch) == {"vips": False, "dns": False, "haproxy": False}
    take(watch, processor(ready_outputs=("dns", "vips")))
    assert gates(watch) == {"vips": True, "dns": True, "haproxy": False}
    assert not watch.processor_ready
    take(watch, processor())  # a later mark says less (a new active catching up): still ready
    assert gates(watch) == {"vips": True, "dns": True, "haproxy": False}
    take(watch, processor(ready=True, ready_outputs=("dns", "haproxy", "vips")))
    assert gates(watch) == {"vips": True, "dns": True, "haproxy": True} and watch.processor_ready


def test_a_mark_without_ready_outputs_from_an_older_processor_speaks_for_every_table():
    watch = StatusWatch("unused:9092", "status")
    take(watch, processor(ready=False))
    assert gates(watch) == {"vips": False, "dns": False, "haproxy": False}
    # As an older processor wrote it: no ready_outputs field at all.
    old = b'{"role":"processor","instance":"p:1:ab","started_at":1.0,"heartbeat_at":1.0,"in_sync":true,"ready":true}'
    watch.take(ConsumedRecord("status", 0, 1, 0, PROCESSOR_KEY, old, []))
    assert watch.marks[PROCESSOR_KEY].ready_outputs == []
    assert gates(watch) == {"vips": True, "dns": True, "haproxy": True}


def test_a_producer_mark_opens_no_gate():
    watch = StatusWatch("unused:9092", "status")
    take(watch, Mark("producer", "m", 1.0, 1.0, True, synced_at=1.0, ready=True, ready_outputs=["dns"]), "producer/mesos")
    assert gates(watch) == {"vips": False, "dns": False, "haproxy": False}
