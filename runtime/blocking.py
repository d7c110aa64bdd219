"""Blocking work (a Kafka client's loop) inside an asyncio program, stopped by its event; and a
sleep that such a stop ends at once."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import Executor


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake at once when ``stop`` is set."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass


async def run_until_stopped(stop: asyncio.Event, work: Callable[[threading.Event], None]) -> None:
    """Run ``work(halt)`` in a thread until it returns by itself or ``stop`` is set; then set
    ``halt`` (the work must check it often and return) and wait for the thread. Re-raises what
    the work raised, so a worker that dies is not mistaken for one that was stopped."""
    halt = threading.Event()
    working = asyncio.create_task(asyncio.to_thread(work, halt))
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({working, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        halt.set()
        stopping.cancel()
        await working


def in_executor_with_context(loop: asyncio.AbstractEventLoop, executor: Executor, work: Callable, *args):
    """`work(*args)` on `executor` in a copy of this task's context: unlike asyncio.to_thread,
    run_in_executor does not copy it, and log lines from the thread would lose their context
    (the role, the topic)."""
    return loop.run_in_executor(executor, functools.partial(contextvars.copy_context().run, work, *args))
