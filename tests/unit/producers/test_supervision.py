"""One side of the producer failing on something unforeseen neither stops the other side nor
itself for good: it is restarted after a pause. A fatal Kafka error still ends the process."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from confluent_kafka import KafkaError, KafkaException

from producers.run import _run_until_stopped, _supervised


class FakeLoop:
    """A side that fails ``failures`` times with ``error``, then runs until stopped."""

    def __init__(self, source: str, failures: int = 0, error: Exception | None = None):
        self.observer = SimpleNamespace(publisher=SimpleNamespace(source=source))
        self.connected = asyncio.Event()
        self.marks = None
        self.failures = failures
        self.error = error
        self.runs = 0

    async def run(self, stop: asyncio.Event) -> None:
        self.runs += 1
        if self.runs <= self.failures:
            raise self.error
        self.connected.set()
        await stop.wait()


async def test_a_failing_side_is_restarted_and_the_other_side_keeps_running(monkeypatch):
    monkeypatch.setattr("producers.run.Backoff", lambda **_: SimpleNamespace(next_delay=lambda: 0.01))
    stop = asyncio.Event()
    broken, healthy = FakeLoop("marathon", failures=2, error=AttributeError("'str' object has no attribute 'get'")), FakeLoop("mesos")
    runner = asyncio.create_task(_run_until_stopped([_supervised(broken, stop), _supervised(healthy, stop)], stop))
    await asyncio.wait_for(asyncio.gather(broken.connected.wait(), healthy.connected.wait()), 5)
    assert (broken.runs, healthy.runs) == (3, 1)
    stop.set()
    await asyncio.wait_for(runner, 5)


async def test_a_fatal_kafka_error_is_not_retried():
    stop = asyncio.Event()
    fatal = FakeLoop("mesos", failures=1, error=KafkaException(KafkaError(KafkaError._FATAL)))
    with pytest.raises(KafkaException):
        await asyncio.wait_for(_run_until_stopped([_supervised(fatal, stop), _supervised(FakeLoop("marathon"), stop)], stop), 5)
    assert fatal.runs == 1
