"""glibc's heap: what it keeps of the memory a process frees, and giving that back.

glibc serves an allocation above its mmap threshold with pages of its own (``mmap``),
returned to the system when freed, and gives back the top of its heap once more than
the trim threshold is free there. Both thresholds start at 128 KiB; the mmap threshold
then rises to the largest such block freed, and the trim threshold to twice that
(``mallopt(3)``, "M_MMAP_THRESHOLD"). Memory freed anywhere else in the heap stays the
process's. Elsewhere (musl, macOS) none of this applies, and this module does nothing.

Two ways a mailsync process frees memory, one function each:

- **Large buffers, freed and taken again at once** (:func:`configure`). An import cycles
  through buffers of 256 KiB to 1 MiB, hundreds a second: each TLS read's bytes, each
  Kafka record batch and the copies aiokafka makes of it to send it. Such a working set
  is more than twice its largest block, so the heap's top went back to the system and
  came again, over and over, each page zeroed and faulted in on its first write:
  19,000-25,000 minor page faults an import of 2,000 messages (62 MB), where a heap that
  keeps them takes 6,000, all while it first grows (bench/RESULTS.md, "Issue #19, round
  10"). :func:`configure` fixes the mmap threshold at :data:`MMAP_THRESHOLD`, a Kafka
  request at its largest, and keeps up to :data:`TRIM_THRESHOLD` free at the heap's top
  (four of them); what is free beyond that is given back as before. Where ``MALLOC_*``
  or ``GLIBC_TUNABLES`` set malloc's thresholds, those win and this changes nothing.
- **Small blocks freed all through the heap** (:func:`release_free_memory`). A fetcher
  holding thousands of idle IMAP connections frees, after each pass, blocks spread all
  through the heap (each connection's 16 KiB TLS read buffer while it waits in IDLE, a
  pass's parsed responses): the resident size stays at its high-water mark.
  ``malloc_trim(0)`` walks the free lists and releases every whole free page
  (``MADV_DONTNEED``, glibc >= 2.8), wherever it is.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
from typing import Any

from services.common.kafka import MAX_REQUEST_BYTES

log = logging.getLogger("mailsync.heap")

MMAP_THRESHOLD = MAX_REQUEST_BYTES
TRIM_THRESHOLD = 4 * MAX_REQUEST_BYTES
# mallopt(3)'s parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_SET_BY_ENVIRONMENT = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


@functools.cache
def _glibc() -> Any | None:
    """The C library, when it is glibc."""
    try:
        if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
            return None
    except (ValueError, OSError):  # a name this platform does not know
        return None
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def configure() -> bool:
    """Set the thresholds (the module doc), once per process before its services start;
    True when they were set here."""
    tuned = os.environ.get("GLIBC_TUNABLES", "")
    if any(name in os.environ for name in _SET_BY_ENVIRONMENT) or "glibc.malloc." in tuned:
        return False  # the operator's choice
    libc = _glibc()
    if libc is None:
        return False
    # mallopt returns 1 on success.
    if libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1:
        log.warning("malloc's mmap threshold was not set: large buffers stay on mmap")
        return False
    if libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) != 1:
        log.warning("malloc's trim threshold was not set")
        return False
    return True


def release_free_memory() -> bool:
    """Return the heap's free pages to the system; False where the C library cannot."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
