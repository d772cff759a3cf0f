"""Giving freed heap memory back to the system (glibc's ``malloc_trim``).

glibc keeps memory a process freed inside its heap for later allocations, and returns
it to the system only from the heap's top. A fetcher holding thousands of idle IMAP
connections frees, after each pass, blocks spread all through the heap (each
connection's 16 KiB TLS read buffer while it waits in IDLE, a pass's parsed responses):
the resident size stays at its high-water mark. ``malloc_trim(0)`` walks the free
lists and releases every whole free page (``MADV_DONTNEED``, glibc >= 2.8), wherever it
is. Elsewhere (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    return trim


def release_free_memory() -> bool:
    """Return the heap's free pages to the system; False where the C library cannot."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
