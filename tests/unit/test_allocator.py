"""malloc's thresholds (services.common.allocator): buffers of a Kafka batch's size, freed
and taken again, come from the heap instead of fresh pages from the kernel."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from services.common import allocator

ROOT = Path(__file__).resolve().parents[2]

# What an import does to the heap, in little: a working set of four batches' worth of
# 1 MiB blocks and their copy, freed and taken again; the minor page faults of the second
# round of cycles (the first grows the heap).
_CYCLES = textwrap.dedent(
    """
    import resource, sys
    from services.common import allocator
    if sys.argv[1] == "configured":
        assert allocator.configure()
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


def _faults(mode: str, **env: str) -> int:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_"))}
    done = subprocess.run(
        [sys.executable, "-c", _CYCLES, mode],
        env={**environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)


@pytest.mark.skipif(not allocator._glibc(), reason="the thresholds are glibc's")
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
        code = "from services.common import allocator; print(allocator.configure())"
        done = subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            capture_output=True,
            text=True,
            check=True,
        )
        assert done.stdout.strip() == "False", env
