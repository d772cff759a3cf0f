"""glibc's malloc set for processes that move large buffers, as the collector is (.garbage).

glibc serves an allocation above its mmap threshold with pages of its own (``mmap``),
returned to the kernel when freed, and gives back the top of its heap once more than
the trim threshold is free there. Both thresholds start at 128 KiB; the mmap threshold
then rises to the largest such block freed, and the trim threshold to twice that
(``mallopt(3)``, "M_MMAP_THRESHOLD"). Every page that comes back from the kernel is
zeroed and faulted in again on its first write.

An import cycles through buffers of 256 KiB to 1 MiB, hundreds a second: each TLS read's
bytes, each Kafka record batch and the copies aiokafka makes of it to send it. A working
set of several such blocks is more than twice the largest one, so the heap's top went
back to the kernel and came again, over and over: 19,000-25,000 minor page faults an
import of 2,000 messages (62 MB), where one that keeps its memory takes 6,000, all while
its heap first grows; a fifth of the fetcher's CPU over the import (bench/RESULTS.md,
"Issue #19, round 10").

:func:`configure` fixes the mmap threshold at :data:`MMAP_THRESHOLD` (a Kafka request
at its largest, ``MAX_REQUEST_BYTES``: what a batch and its copies are, stays in the
heap) and keeps up to :data:`TRIM_THRESHOLD` free at the heap's top (four of them). A
process gives back what is free beyond that, as before. Where ``MALLOC_*`` or
``GLIBC_TUNABLES`` set malloc's tunables already, those win and this changes nothing;
off glibc (musl's malloc has no such thresholds) it does nothing either.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

from services.common.kafka import MAX_REQUEST_BYTES

log = logging.getLogger("mailsync.allocator")

MMAP_THRESHOLD = MAX_REQUEST_BYTES
TRIM_THRESHOLD = 4 * MAX_REQUEST_BYTES
# mallopt(3)'s parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_SET_BY_ENVIRONMENT = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def configure() -> bool:
    """Set the thresholds (the module doc), once per process before its services start;
    True when they were set here."""
    tuned = os.environ.get("GLIBC_TUNABLES", "")
    if any(name in os.environ for name in _SET_BY_ENVIRONMENT) or "glibc.malloc." in tuned:
        return False  # the operator's choice
    if not _glibc():
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    # mallopt returns 1 on success, 0 on error.
    if libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1:
        log.warning("malloc's mmap threshold was not set; large buffers stay on mmap")
        return False
    if libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) != 1:
        log.warning("malloc's trim threshold was not set")
        return False
    return True


def _glibc() -> bool:
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError):  # not a name this platform knows
        return False
