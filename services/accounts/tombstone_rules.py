"""Tombstones: which to leave, which sightings they stop, which are stale (pure).

A tombstone stands for a sighting deleted by erasure or retention (see
``schemas/tombstone.py``). It stops the same place, and the same activity anywhere in
the same account: a UIDVALIDITY change (RFC 3501 2.3.1.1) renumbers the message, a
resync of another folder finds it again, and neither must bring it back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from schemas.common import MessageLocation
from schemas.tombstone import Tombstone, TombstoneReason


def left_by(
    doc: Mapping[str, Any],
    accounts: Collection[str] | None,
    reason: TombstoneReason,
    at: dt.datetime,
) -> list[Tombstone]:
    """The tombstones an activity document leaves when the sightings of ``accounts``
    (all of them if None) are deleted. An expunged sighting leaves none: its UID is no
    longer on the server, there is nothing to keep out."""
    out = []
    for s in doc.get("sightings", ()):
        if s.get("expunged_at") is not None:
            continue
        if accounts is not None and s.get("account_id") not in accounts:
            continue
        loc = MessageLocation(
            account_id=s["account_id"],
            folder=s["folder"],
            uidvalidity=s["uidvalidity"],
            uid=s["uid"],
        )
        out.append(Tombstone.of(loc, doc["_id"], reason, at))
    return out


def stopped(
    sightings: Sequence[tuple[str, MessageLocation]],
    tombstones: Iterable[Tombstone],
    at: dt.datetime,
) -> tuple[set[int], list[Tombstone]]:
    """Which of ``(activity_id, location)`` a tombstone stops (their indices), and the
    tombstones to add where a stopped message turned up at a new place (so that the
    fetcher skips it there too)."""
    places = {(t.account_id, t.folder, t.uidvalidity, t.uid) for t in tombstones}
    by_activity: dict[tuple[str, str], Tombstone] = {}
    for t in tombstones:
        by_activity.setdefault((t.account_id, t.activity_id), t)
    out: set[int] = set()
    new: list[Tombstone] = []
    for i, (activity_id, loc) in enumerate(sightings):
        if (loc.account_id, loc.folder, loc.uidvalidity, loc.uid) in places:
            out.add(i)
        elif (found := by_activity.get((loc.account_id, activity_id))) is not None:
            out.add(i)
            new.append(Tombstone.of(loc, activity_id, found.reason, at))
    return out, new


def stale(tombstoned: Iterable[int], on_server: Iterable[int]) -> list[int]:
    """The tombstoned UIDs that left the folder: nothing left to keep out (RFC 3501
    2.3.1.1: a UID is never reused within a UIDVALIDITY)."""
    present = set(on_server)
    return sorted(u for u in set(tombstoned) if u not in present)
