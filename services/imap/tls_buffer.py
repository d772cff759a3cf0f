"""A smaller TLS read buffer for IMAP connections that mostly wait.

asyncio's TLS layer (``asyncio.sslproto.SSLProtocol``) gives every connection a read
buffer of ``max_size`` bytes (256 KiB in CPython 3.11-3.13), allocated up front and held
for the connection's life. An idle account holds two connections (INBOX in IDLE, the
other folders polled): 512 of the 628 KiB each idle account cost (tracemalloc, issue
#16). A TLS record carries at most 16 KiB of plaintext (RFC 8446 5.1), so a buffer of a
few records still takes whole records per read; a large import only makes more reads.

While the connection waits in IDLE, the buffer is smaller still (``IDLE_READ_BUFFER``,
:meth:`ImapSession.idle_until`) and grows back for the commands after it. While it
fetches many bodies (an import, ``BULK_FETCH_FROM`` UIDs and more), it is asyncio's
256 KiB (``BULK_READ_BUFFER``): since each message is handed over as it arrives, a read
of one TLS record each took ~3,800 reads for 62 MB where 256 KiB takes ~340, and 17%
more of the fetcher's CPU for the same import (bench/RESULTS.md, "Issue #19, round 6").

The buffers of a connection's working size are mappings of their own (``mmap``), not
blocks of the heap: a connection entering IDLE unmaps its buffer and the pages go back
to the system at once. From the heap, the freed blocks of thousands of connections,
spread between what the process keeps, stayed resident (glibc returns only the heap's
top): ~16 KiB an account after the first import, a sixth of the 100 KiB an idle account
may cost (bench/RESULTS.md, Scale). Mapped and unmapped once per sync pass, not per read.

The buffer is private to asyncio: :func:`set_read_buffer` changes it only where the
attributes it knows are there (``tests/unit/test_dependency_internals.py`` pins them),
and otherwise leaves the connection as it is.
"""

from __future__ import annotations

import asyncio
import mmap

# One TLS record's worth (RFC 8446 5.1: at most 2^14 bytes of plaintext in one record).
# Measured (bench/RESULTS.md, Scale): the fetcher imported as fast with 16 KiB as with
# 32 or asyncio's 256 (12 alternating rounds each, medians 2,140, 2,106, 2,111 msgs/s).
DEFAULT_READ_BUFFER = 16 * 1024
# While a connection fetches many bodies: asyncio's own size, 16 records a read. Only
# that long, so what a connection holds for its life stays DEFAULT_READ_BUFFER; a few
# messages of new mail are read as before.
BULK_READ_BUFFER = 256 * 1024
BULK_FETCH_FROM = 100  # UIDs in one UID FETCH
# While a connection waits in IDLE it reads a short line now and then (RFC 2177 untagged
# responses, NOTIFY's STATUS lines): a buffer this size holds them, and the 16 KiB one
# is given back for the wait, which is where an idle account spends its life.
IDLE_READ_BUFFER = 1024
# From this size a buffer is a mapping of its own (whole pages), below it a heap block.
MAPPED_FROM = 4 * mmap.PAGESIZE


def _buffer(size: int) -> bytearray | mmap.mmap:
    """``size`` writable bytes; a private anonymous mapping from ``MAPPED_FROM``, which
    goes back to the system when the last reference to it goes (munmap)."""
    if size >= MAPPED_FROM:
        return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return bytearray(size)


def set_read_buffer(transport: asyncio.BaseTransport | None, size: int) -> bool:
    """Give the TLS layer under ``transport`` a read buffer of ``size`` bytes; False if
    ``transport`` is not asyncio's TLS transport (plaintext, or another implementation)."""
    proto = getattr(transport, "_ssl_protocol", None)
    if proto is None or not isinstance(getattr(proto, "_ssl_buffer", None), bytearray | mmap.mmap):
        return False
    # get_buffer() sizes its reads by the instance's max_size, and grows _ssl_buffer
    # back only to that: both must change together. asyncio only reads into the buffer
    # through a view and copies out what it received, so any writable buffer serves.
    proto.max_size = size
    proto._ssl_buffer = _buffer(size)
    proto._ssl_buffer_view = memoryview(proto._ssl_buffer)
    return True
