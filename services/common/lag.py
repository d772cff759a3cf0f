"""Consumer lag from committed and end offsets (pure).

Lag of a group on a topic = sum over the topic's partitions of (end offset - committed
offset). A partition the group never committed counts whole (the group starts from the
earliest record). Negative differences are clamped to zero: end offsets and committed
offsets are read in two requests, and a commit landing between them can put the
committed offset past the end offset read a moment earlier.
"""

from __future__ import annotations

from collections.abc import Mapping


def lag_by_topic(
    committed: Mapping[tuple[str, int], int], end: Mapping[tuple[str, int], int]
) -> dict[str, int]:
    """Records behind, per topic of ``end``; both maps are keyed by (topic, partition)."""
    out: dict[str, int] = {}
    for (topic, partition), end_offset in end.items():
        done = committed.get((topic, partition), 0)
        out[topic] = out.get(topic, 0) + max(0, end_offset - max(done, 0))
    return out
