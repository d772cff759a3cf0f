"""A mailsync service in a process of its own, for ``bench.scale``: ``python -m
bench._service NAME`` is ``mailsync NAME`` (the same settings from the environment),
and with ``MAILSYNC_BENCH_TRACEMALLOC=DIR`` it can trace where its memory grows.

The first SIGUSR1 starts tracemalloc (and writes ``DIR/tracing``); the second takes a
snapshot and writes what it holds to ``DIR/growth.json`` (:func:`growth`): what was
allocated since the first signal and is still alive, by traceback (the largest), summed
by the innermost mailsync frame and by the package that allocated. Tracing starts late
on purpose: what start-up allocated is not in the figure, and the process runs
untraced (at full speed) until then; a traced process is slower and holds more memory,
so it measures where memory goes, never how much or how fast. Files appear whole
(written aside, then renamed), so the bench can wait for them.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import sysconfig
import tracemalloc
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

TRACE_ENV = "MAILSYNC_BENCH_TRACEMALLOC"
FRAMES = 16  # deep enough to reach the mailsync frame under asyncio, ssl and aiokafka
TOP = 15

ROOT = Path(__file__).resolve().parent.parent
LIBRARIES = Path(sysconfig.get_path("purelib"))
STDLIB = Path(sysconfig.get_path("stdlib"))
OURS = ("services/", "schemas/")
# The process's entry, below the event loop: a frame here means the allocation came from
# a callback of the loop (a protocol's connection_made, data_received), not a task.
ENTRY = ("services/cli.py", "services/__main__.py")


def short(filename: str) -> str:
    """A frame's file as the reader knows it: ``services/...``, ``aiokafka/...``,
    ``asyncio/...`` (the checkout, site-packages and the standard library cut off)."""
    path = Path(filename)
    for base in (LIBRARIES, STDLIB, ROOT):  # site-packages lies in the checkout
        if path.is_relative_to(base):
            return str(path.relative_to(base))
    return filename


def ours(frames: Sequence[tuple[str, int]]) -> str:
    """The innermost mailsync frame of a traceback (oldest first), as ``file:line``."""
    for name, line in reversed(frames):
        if name.startswith(ENTRY):
            break
        if name.startswith(OURS):
            return f"{name}:{line}"
    return "(none: a callback of the event loop, or a library's own task)"


def package(name: str) -> str:
    """What allocated: the package of the innermost frame's file (``services`` and
    ``schemas`` by subpackage)."""
    parts = name.split("/")
    if parts[0] in ("services", "schemas") and len(parts) > 2:
        return "/".join(parts[:2])
    return parts[0].removesuffix(".py")


def growth(stats: Sequence[Any], top: int = TOP) -> dict[str, Any]:
    """``Snapshot.statistics("traceback")`` as JSON: totals, the ``top`` largest
    tracebacks, and the sizes summed by innermost mailsync frame and by allocating
    package (each list sorted, largest first)."""
    rows = []
    by_ours: defaultdict[str, int] = defaultdict(int)
    by_package: defaultdict[str, int] = defaultdict(int)
    for stat in stats:
        frames = [(short(f.filename), f.lineno) for f in stat.traceback]
        by_ours[ours(frames)] += stat.size
        by_package[package(frames[-1][0])] += stat.size
        rows.append((stat.size, stat.count, frames))
    rows.sort(key=lambda r: r[0], reverse=True)
    return {
        "size": sum(s.size for s in stats),
        "count": sum(s.count for s in stats),
        "top": [{"size": s, "count": c, "frames": f} for s, c, f in rows[:top]],
        "by_mailsync_frame": sorted(by_ours.items(), key=lambda kv: kv[1], reverse=True),
        "by_package": sorted(by_package.items(), key=lambda kv: kv[1], reverse=True),
    }


def _write(path: Path, write: Any) -> None:
    aside = path.with_suffix(path.suffix + ".part")
    write(aside)
    aside.rename(path)


def _on_signal(directory: Path) -> Any:
    def handler(signum: int, frame: FrameType | None) -> None:
        if not tracemalloc.is_tracing():
            tracemalloc.start(FRAMES)
            _write(directory / "tracing", lambda p: p.write_text("tracing\n"))
            return
        snapshot = tracemalloc.take_snapshot()
        tracemalloc.stop()  # what follows is the analysis, not the service
        # Frames of the interpreter's own machinery are not the services' memory.
        snapshot = snapshot.filter_traces([tracemalloc.Filter(False, "<unknown>")])
        data = growth(snapshot.statistics("traceback"))
        _write(directory / "growth.json", lambda p: p.write_text(json.dumps(data)))

    return handler


def main(argv: Sequence[str]) -> int:
    traced = os.environ.get(TRACE_ENV)
    if traced:
        directory = Path(traced)
        directory.mkdir(parents=True, exist_ok=True)
        signal.signal(signal.SIGUSR1, _on_signal(directory))
    from services.cli import main as mailsync

    return mailsync(list(argv))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
