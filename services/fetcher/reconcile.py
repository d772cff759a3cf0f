"""Reconcile: what the server holds against what MongoDB holds (pure).

The cursor says which UIDs were published (acks=all); MongoDB says which became
activities. A UID both on the server and published, but with no sighting, was lost on
the way (the broker lost its data, a topic was deleted): it is fetched and published
again. Duplicates are harmless (dedup and the writer are idempotent), so these rules
only avoid needless work, never decide what is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

Mark = tuple[float, int]  # (when, last UID published by then)


def add_mark(marks: Sequence[Mark], now: float, last_uid: int, grace: float) -> list[Mark]:
    """Record that ``last_uid`` was published at ``now``; keep the marks still inside the
    grace period and the newest one before it (the only old one that matters)."""
    out = [*marks, (now, last_uid)]
    old = [m for m in out if m[0] <= now - grace]
    return old[-1:] + [m for m in out if m[0] > now - grace]


def settled_uid(marks: Sequence[Mark], now: float, grace: float) -> int:
    """The highest UID published at least ``grace`` seconds ago: the activity writer had
    that long to write it, so a UID up to here missing from MongoDB is a gap, not lag."""
    return max((uid for when, uid in marks if when <= now - grace), default=0)


def find_gaps(
    on_server: Iterable[int], published: Iterable[int], stored: Iterable[int], settled: int
) -> list[int]:
    """UIDs still on the server, published, settled, but not in MongoDB: fetch them again."""
    candidates = set(on_server) & set(published)
    return sorted(u for u in candidates - set(stored) if u <= settled)


def flag_changes(
    on_server: Mapping[int, Sequence[str]], stored: Mapping[int, Sequence[str]]
) -> dict[int, tuple[str, ...]]:
    """UID -> the server's flags, where they differ from the stored sighting's.

    For servers without CONDSTORE (RFC 7162), whose flag changes cannot be asked for:
    the whole folder's flags are compared. ``\\Recent`` is per session (RFC 3501 2.3.2)
    and never compared; keywords compare case-insensitively (RFC 3501 2.3.2 flags are
    atoms, and servers differ in the case they return).
    """

    def norm(flags: Sequence[str]) -> frozenset[str]:
        return frozenset(f.lower() for f in flags if f.lower() != "\\recent")

    return {
        uid: tuple(f for f in flags if f.lower() != "\\recent")
        for uid, flags in sorted(on_server.items())
        if uid in stored and norm(flags) != norm(stored[uid])
    }
