"""Tombstones in MongoDB's ``tombstones``: written by erasure and retention, read by the
fetcher (import, reconcile) and the activity writer; see ``schemas/tombstone.py``."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from pymongo import ASCENDING, IndexModel, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase

from schemas.common import MessageLocation
from schemas.tombstone import Tombstone
from services.common.mongo import Document

COLLECTION = "tombstones"


class TombstoneStore:
    def __init__(self, db: AsyncDatabase[Document]):
        self._col = db[COLLECTION]

    async def ensure_indexes(self) -> None:
        await self._col.create_indexes(
            [
                IndexModel(
                    [("account_id", ASCENDING), ("folder", ASCENDING), ("uidvalidity", ASCENDING)],
                    name="folder",
                ),
                IndexModel([("activity_id", ASCENDING)], name="activity"),
            ]
        )

    async def add(self, tombstones: Sequence[Tombstone]) -> None:
        """Idempotent: a tombstone written twice is one document."""
        ops = [
            ReplaceOne({"_id": t.id}, t.model_dump(by_alias=True, mode="python"), upsert=True)
            for t in tombstones
        ]
        if ops:
            await self._col.bulk_write(ops, ordered=False)

    async def uids(self, account_id: str, folder: str, uidvalidity: int) -> set[int]:
        """The tombstoned UIDs of one folder (under its current UIDVALIDITY)."""
        query = {"account_id": account_id, "folder": folder, "uidvalidity": uidvalidity}
        return {int(d["uid"]) async for d in self._col.find(query, {"uid": 1})}

    async def among(self, sightings: Iterable[tuple[str, MessageLocation]]) -> list[Tombstone]:
        """The tombstones of these activities (one query): the candidates that
        :func:`services.accounts.tombstone_rules.stopped` decides on."""
        ids = sorted({activity_id for activity_id, _ in sightings})
        if not ids:
            return []
        # By activity id alone, one indexed $in: a tombstoned place holds the same
        # message, so the same activity id; the account is matched by the caller.
        cursor = self._col.find({"activity_id": {"$in": ids}})
        return [Tombstone.model_validate(d) async for d in cursor]

    async def forget(self, account_id: str, folder: str, uids: Collection[int]) -> int:
        """Drop the tombstones of UIDs that left the folder."""
        if not uids:
            return 0
        query = {"account_id": account_id, "folder": folder, "uid": {"$in": sorted(uids)}}
        return (await self._col.delete_many(query)).deleted_count

    async def renumbered(self, tombstones: Sequence[Tombstone]) -> None:
        """Tombstones of messages found again under a new UIDVALIDITY (RFC 3501 2.3.1.1):
        stored at the new place, and the same folder's under older UIDVALIDITYs dropped
        (those UIDs mean nothing now), so a folder's tombstones never pile up."""
        await self.add(tombstones)
        for t in tombstones:
            await self._col.delete_many(
                {
                    "account_id": t.account_id,
                    "activity_id": t.activity_id,
                    "folder": t.folder,
                    "uidvalidity": {"$ne": t.uidvalidity},
                }
            )

    async def forget_account(self, account_id: str) -> int:
        """Drop every tombstone of an account (removed, or resynced on request)."""
        return (await self._col.delete_many({"account_id": account_id})).deleted_count
