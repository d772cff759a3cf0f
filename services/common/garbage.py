"""The cyclic garbage collector, set for processes that hold many long-lived objects.

CPython 3.11 collects the youngest generation every 700 net allocations of tracked
objects (``gc.get_threshold()``: 700, 10, 10), the middle one every 10 of those, and
examines *every* tracked object in a full collection, which it starts each 10 middle
collections once the objects that survived one grew by a quarter since the last
(``Modules/gcmodule.c``). A fetcher taking over 5,000 accounts in a rebalance builds
about as many long-lived objects per account as it keeps (sessions, tasks, timers): the
heap grows by half or more, and the default thresholds walk all of it several times
while it does. Measured (bench/scale.py, a replica taking 1,257 accounts at N = 2,500):
1.06 s of collections in the 6 s its loop was busy logging them in, 0.70 s of it in
four full collections; the logins are the loop's work, so that was a sixth of them.

- :data:`THRESHOLDS`: a collection of the youngest generation every 10,000 net
  allocations, and a full one considered every 10 million (the quarter rule still
  applies): a takeover of 5,000 accounts sees one at most. At N = 2,500 the replica
  taking 1,257 accounts collected for 0.30 s instead of 1.06 s and spent 2.8 ms of CPU
  per account instead of 3.6 (bench/RESULTS.md, Scale, run 10). What a replica gives up
  in a rebalance waits for the next full collection, which the allocations of the
  accounts it takes later bring on: collecting it at once cost the replica 5 s of its
  loop at N = 10,000, in the middle of the handoff.
- :func:`freeze_started` after a process's services started: what the start built
  (modules, settings, every account record of the directory) moves to the permanent
  generation (``gc.freeze``), which no collection examines again. Objects of it that
  become garbage are still freed by their reference counts, only cycles among them
  would stay (a start builds few that it drops).
- The pauses as ``mailsync_gc_pause_seconds{generation}``: what the collector costs the
  loop, where ops can see it.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from services.common.metrics import GC_PAUSES

THRESHOLDS = (10_000, 10, 100)

_by_generation = [GC_PAUSES.labels(generation=str(g)) for g in range(3)]
_began = [0.0]


def _timed(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _began[0] = time.perf_counter()
    else:
        _by_generation[info["generation"]].observe(time.perf_counter() - _began[0])


def configure() -> None:
    """:data:`THRESHOLDS` and the pause metric, once per process before its services start."""
    gc.set_threshold(*THRESHOLDS)
    if _timed not in gc.callbacks:
        gc.callbacks.append(_timed)


def freeze_started() -> None:
    """Everything alive now is kept out of every later collection (see the module doc)."""
    # No collection first: a full one over the account directory is a second of the
    # loop as the replica joins its group; the start leaves little garbage in cycles.
    gc.freeze()
