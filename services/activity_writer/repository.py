"""Activity documents in MongoDB: idempotent upserts keyed on the activity id.

Each message becomes three ordered operations; replaying them changes nothing:
1. create the activity if it does not exist (content only on insert);
2. add the sighting if no sighting of that (account, folder) is there yet;
3. renumber that sighting (a UIDVALIDITY change) if it is there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from schemas.activity import ActivityDocument, SightingDoc
from services.common.mongo import Document

COLLECTION = "activities"
_PER_SIGHTING = ("account_ids", "sightings", "updated_at", "created_at", "_id")


def upsert_ops(activity: ActivityDocument, sighting: SightingDoc) -> list[UpdateOne]:
    doc = activity.model_dump(by_alias=True)
    content = {k: v for k, v in doc.items() if k not in _PER_SIGHTING}
    same_place = {"account_id": sighting.account_id, "folder": sighting.folder}
    s = sighting.model_dump(mode="python")
    return [
        UpdateOne(
            {"_id": activity.id},
            {
                "$setOnInsert": {**content, "created_at": activity.created_at, "sightings": []},
                "$set": {"updated_at": activity.updated_at},
                "$addToSet": {"account_ids": sighting.account_id},
            },
            upsert=True,
        ),
        UpdateOne(
            {"_id": activity.id, "sightings": {"$not": {"$elemMatch": same_place}}},
            {"$push": {"sightings": s}},
        ),
        UpdateOne(
            {"_id": activity.id, "sightings": {"$elemMatch": same_place}},
            {"$set": {"sightings.$.uid": s["uid"], "sightings.$.uidvalidity": s["uidvalidity"]}},
        ),
    ]


class ActivityRepository:
    def __init__(self, db: AsyncDatabase[Document]):
        self.collection = db[COLLECTION]

    async def ensure_indexes(self) -> None:
        """Indexes for the CRM's queries: by account and date, participant, Message-ID."""
        await self.collection.create_indexes(
            [
                IndexModel([("account_ids", ASCENDING), ("date", DESCENDING)], name="account_date"),
                IndexModel([("message_id", ASCENDING)], name="message_id"),
                IndexModel([("from.address", ASCENDING)], name="from_address"),
                IndexModel([("to.address", ASCENDING)], name="to_address"),
            ]
        )

    async def write(self, ops: Iterable[UpdateOne]) -> Any:
        batch = list(ops)
        if not batch:
            return None
        # Ordered: an activity's three operations must apply in sequence.
        return await self.collection.bulk_write(batch, ordered=True)
