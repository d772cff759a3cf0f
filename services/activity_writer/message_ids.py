"""Which activities carry each Message-ID: the ``message_ids`` collection.

One small document per normalised Message-ID (``_id``), holding the ids of the
activities that carry it (``ids``). Activities that share a Message-ID but are
different messages are linked (``message_id_conflict``); finding them by querying the
activities for the batch's own Message-IDs re-read every document just written (the
benchmark's writer fell from 0.41 to 0.18-0.29 of ``insert_many``). Here a batch costs
one ``insert_many`` of small documents: an insert that succeeds is a Message-ID no
stored activity had, so only those refused (rare but for replays and duplicate
sightings) are read, and only entries with two ids or more are conflicts.

Every written activity is recorded, not only those this write created: a replay after a
crash between the activity's insert and its entry fills the entry in. Two writers
racing on one Message-ID both add their ids before reading the entry back, so the later
one reads both and links them. Erasure removes its activities' ids, and an entry left
empty goes with them (it names a Message-ID). An id whose activity was erased in the
middle of such a race may remain; the writer links only activities it reads back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from services.common.mongo import IN_SLICE, Document, find_in, insert_new

COLLECTION = "message_ids"


def entries(pairs: Iterable[tuple[str, str]]) -> dict[str, tuple[str, ...]]:
    """Message id -> the sorted ids of the activities carrying it, from (message id,
    activity id) pairs."""
    ids: dict[str, set[str]] = {}
    for mid, activity_id in pairs:
        ids.setdefault(mid, set()).add(activity_id)
    return {mid: tuple(sorted(found)) for mid, found in ids.items()}


def missing(
    wanted: Mapping[str, Sequence[str]], stored: Mapping[str, Sequence[str]]
) -> dict[str, tuple[str, ...]]:
    """The ``wanted`` ids that the ``stored`` entries lack, by message id (an entry not
    stored lacks them all); message ids lacking none are left out."""
    out = {}
    for mid, ids in wanted.items():
        have = set(stored.get(mid, ()))
        lacking = tuple(i for i in ids if i not in have)
        if lacking:
            out[mid] = lacking
    return out


def shared(held: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """The entries naming two activities or more: the only possible conflicts."""
    return {mid: tuple(ids) for mid, ids in held.items() if len(set(ids)) > 1}


class MessageIdIndex:
    def __init__(self, db: AsyncDatabase[Document]):
        self._col = db[COLLECTION]

    async def add(self, pairs: Iterable[tuple[str, str]]) -> dict[str, tuple[str, ...]]:
        """Record (message id, activity id) pairs; return the entries among theirs that
        name two activities or more, as stored once these ids are in."""
        wanted = entries(pairs)
        if not wanted:
            return {}
        mids = sorted(wanted)
        refused = set(
            await insert_new(self._col, [{"_id": m, "ids": list(wanted[m])} for m in mids])
        )
        # An entry this insert created holds exactly what the batch brought.
        held = {m: wanted[m] for i, m in enumerate(mids) if i not in refused}
        if refused:
            collided = [mids[i] for i in sorted(refused)]
            stored = await self._read(collided)
            lacking = missing({m: wanted[m] for m in collided}, stored)
            if lacking:
                # Upserted: erasure may have dropped the entry since the insert saw it.
                await self._col.bulk_write(
                    [
                        UpdateOne(
                            {"_id": m}, {"$addToSet": {"ids": {"$each": list(ids)}}}, upsert=True
                        )
                        for m, ids in sorted(lacking.items())
                    ],
                    ordered=False,
                )
                # Read after adding: another writer's ids added meanwhile are seen here.
                stored |= await self._read(sorted(lacking))
            held |= stored
        return shared(held)

    async def forget(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Remove erased activities, as (message id, activity id) pairs; drop the
        entries left empty."""
        gone = entries(pairs)
        mids = sorted(gone)
        for i in range(0, len(mids), IN_SLICE):
            part = mids[i : i + IN_SLICE]
            ids = sorted({a for m in part for a in gone[m]})
            await self._col.update_many({"_id": {"$in": part}}, {"$pull": {"ids": {"$in": ids}}})
            # Only an entry still empty: an id added since the pull keeps its entry.
            await self._col.delete_many({"_id": {"$in": part}, "ids": {"$size": 0}})

    async def _read(self, mids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        return {
            doc["_id"]: tuple(doc.get("ids", ())) async for doc in find_in(self._col, "_id", mids)
        }
