"""glibc's heap (services.common.heap): freed memory goes back to the system (malloc_trim),
where it stayed before; buffers of a Kafka batch's size, freed and taken again, come
from the heap instead of fresh pages from the system."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from services.common.heap import _glibc, release_free_memory

ROOT = Path(__file__).resolve().parents[2]


def _rss_kib() -> int:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0])


@pytest.mark.skipif(_glibc() is None, reason="not glibc")
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


# What an import does to the heap, in little: a working set of four batches' worth of
# 1 MiB blocks and their copy, freed and taken again; the minor page faults of the second
# round of cycles (the first grows the heap).
_CYCLES = textwrap.dedent(
    """
    import resource, sys
    from services.common import heap
    if sys.argv[1] == "configured":
        assert heap.configure()
    def cycle():
        for _ in range(50):
            blocks = [bytes(1_100_000) for _ in range(4)]
            joined = b"".join(blocks)
            del blocks, joined
    cycle()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    cycle()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def _python(code: str, *args: str, **env: str) -> str:
    """What ``code`` prints in a fresh interpreter, with malloc's settings only ``env``'s."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_"))}
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env={**environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def _faults(mode: str) -> int:
    return int(_python(_CYCLES, mode))


@pytest.mark.skipif(_glibc() is None, reason="the thresholds are glibc's")
def test_large_buffers_taken_again_come_from_the_heap() -> None:
    default, configured = _faults("default"), _faults("configured")
    # glibc's own thresholds give each round's blocks back to the kernel: every page
    # of every block faults in again (about 270 a block).
    assert default > 50 * 5 * 200, default
    assert configured < default / 20, (configured, default)


def test_the_operators_malloc_settings_win() -> None:
    for env in (
        {"MALLOC_TRIM_THRESHOLD_": "1048576"},
        {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1"},
    ):
        code = "from services.common import heap; print(heap.configure())"
        assert _python(code, **env) == "False", env
