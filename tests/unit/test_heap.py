"""Freed memory goes back to the system (glibc's malloc_trim), where it stayed before."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.heap import _malloc_trim, release_free_memory


def _rss_kib() -> int:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0])


@pytest.mark.skipif(_malloc_trim() is None, reason="not glibc")
def test_blocks_freed_all_through_the_heap_leave_the_resident_size() -> None:
    # As idle connections free their 16 KiB read buffers between what they keep.
    kept: list[bytearray] = []
    freed: list[bytearray] = []
    for _ in range(4000):
        kept.append(bytearray(4000))
        freed.append(bytearray(16 * 1024))
    before = _rss_kib()
    freed.clear()
    assert _rss_kib() > before - 16 * 1024  # glibc kept most of the 62 MiB freed
    assert release_free_memory()
    assert _rss_kib() < before - 32 * 1024  # at least half of it is the system's again
    assert len(kept) == 4000
