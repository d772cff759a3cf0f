"""What MongoDB holds of a folder: the activities' sightings, read-only.

The activity writer owns the ``activities`` collection; the fetcher only reads which
UIDs of a folder became activities (to find gaps), under which Message-ID (to
revalidate a UIDVALIDITY change) and with which flags (to find flag changes on servers
without CONDSTORE).
"""

from __future__ import annotations

from dataclasses import dataclass

from pymongo.asynchronous.database import AsyncDatabase

from services.common.mongo import Document

COLLECTION = "activities"  # the activity writer's (services/activity_writer/repository.py)


@dataclass(frozen=True)
class StoredSighting:
    uid: int
    message_id: str | None
    flags: tuple[str, ...]


class SightingReader:
    def __init__(self, db: AsyncDatabase[Document]):
        self._col = db[COLLECTION]

    async def in_folder(
        self, account_id: str, folder: str, uidvalidity: int
    ) -> dict[int, StoredSighting]:
        """UID -> sighting, for the folder's messages that are activities and not expunged."""
        place = {"account_id": account_id, "folder": folder, "uidvalidity": uidvalidity}
        # account_ids first: it is indexed (account_date), so this reads the account's
        # activities only, never the whole collection.
        query = {"account_ids": account_id, "sightings": {"$elemMatch": place}}
        projection = {"message_id": 1, "sightings": 1}
        out: dict[int, StoredSighting] = {}
        async for doc in self._col.find(query, projection):
            for s in doc.get("sightings", ()):
                if (
                    s.get("account_id") == account_id
                    and s.get("folder") == folder
                    and s.get("uidvalidity") == uidvalidity
                    and s.get("expunged_at") is None
                ):
                    out[int(s["uid"])] = StoredSighting(
                        uid=int(s["uid"]),
                        message_id=doc.get("message_id"),
                        flags=tuple(s.get("flags", ())),
                    )
        return out
