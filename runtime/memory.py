"""Handing freed heap memory back to the operating system (glibc's ``malloc_trim``).

A processor's rebuild and takeover allocate, then free, hundreds of megabytes of transient
objects (every source record read, every output record compared). glibc keeps freed memory
in its arenas, so the process's RSS would stay at the peak for as long as it runs; a trim
returns what is free. Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)


def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


_TRIM = _malloc_trim()


def release_free_memory() -> bool:
    """Return the heap's free memory to the OS; True if the C library could."""
    if _TRIM is None:
        return False
    return bool(_TRIM(0))
