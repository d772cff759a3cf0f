"""Which sighting a stored activity gains, and which one is canonical (pure).

MongoDB's document decides, not dedup's table: the sighting that created the document
(its insert won) is canonical and stays first; any other sighting is appended as a
duplicate, once per IMAP message (account, folder, UIDVALIDITY, UID). A sighting of a
folder under an older UIDVALIDITY than one the activity already holds there is void
(RFC 3501 2.3.1.1; a replay from before a ``remapped`` event) and is not added. So a
lost dedup table, a replay, or two writers racing leave the same documents.

:func:`push_filter` is the same rule as a MongoDB filter, so the update applies it
atomically; :func:`fold` predicts its outcome for events and counters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from schemas.activity import SightingDoc

Place = tuple[str, str, int, int]


def place(s: Mapping[str, Any]) -> Place:
    return (s["account_id"], s["folder"], int(s["uidvalidity"]), int(s["uid"]))


@dataclass(frozen=True)
class Folded:
    sightings: tuple[Place, ...]  # the activity's sightings afterwards, in stored order
    added: bool  # the sighting is new to the document
    created: bool  # the sighting is the document's first (canonical)


def fold(stored: Sequence[Place], new: SightingDoc) -> Folded:
    """What adding ``new`` to an activity holding ``stored`` gives."""
    where = (new.account_id, new.folder, new.uidvalidity, new.uid)
    void = any(
        (a, f) == (new.account_id, new.folder) and v > new.uidvalidity for a, f, v, _ in stored
    )
    added = not void and where not in stored
    after = (*stored, where) if added else tuple(stored)
    return Folded(after, added, bool(after) and after[0] == where)


def push_filter(activity_id: str, new: SightingDoc) -> dict[str, Any]:
    """Match the activity only when :func:`fold` adds ``new`` to it."""
    same = {
        "account_id": new.account_id,
        "folder": new.folder,
        "uidvalidity": new.uidvalidity,
        "uid": new.uid,
    }
    newer = {
        "account_id": new.account_id,
        "folder": new.folder,
        "uidvalidity": {"$gt": new.uidvalidity},
    }
    return {
        "_id": activity_id,
        "$nor": [{"sightings": {"$elemMatch": same}}, {"sightings": {"$elemMatch": newer}}],
    }


def conflict_links(groups: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """Activity id -> the other activities sharing its Message-ID (message id -> ids)."""
    links: dict[str, tuple[str, ...]] = {}
    for ids in groups.values():
        unique = sorted(set(ids))
        if len(unique) > 1:
            for i in unique:
                links[i] = tuple(x for x in unique if x != i)
    return links
