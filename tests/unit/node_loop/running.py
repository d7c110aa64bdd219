"""Running a role's reconcile loop against fakes in a test: start, wait for a condition, stop."""

from __future__ import annotations

import asyncio
import contextlib
import time

from runtime.reconcile import ReconcileLoop


async def eventually(check, timeout: float = 5.0):
    """Wait (bounded) until `check()` is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {check}")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(*loops: ReconcileLoop):
    stop = asyncio.Event()
    tasks = [asyncio.create_task(loop.run(stop)) for loop in loops]
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
