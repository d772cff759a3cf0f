"""Messages the activity writer confirmed, waiting for the account's processed-mail action.

Confirmations are kept in MongoDB (collection ``processed_queue``), not only in Kafka
offsets: whichever replica reads a confirmation stores it, and the replica that syncs
the account acts on it on its next pass, so nothing depends on who holds what.
"""

from __future__ import annotations

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from schemas.activity_event import ActivityConfirmation
from services.common.mongo import Document


def _key(c: ActivityConfirmation) -> str:
    return f"{c.account_id}/{c.folder}/{c.uidvalidity}/{c.uid}"


class ProcessedQueue:
    def __init__(self, db: AsyncDatabase[Document]):
        self._col = db["processed_queue"]

    async def add(self, confirmations: list[ActivityConfirmation]) -> None:
        """One bulk write per batch; a confirmation seen twice is stored once."""
        ops = [
            UpdateOne({"_id": _key(c)}, {"$setOnInsert": c.model_dump(mode="python")}, upsert=True)
            for c in confirmations
        ]
        if ops:
            await self._col.bulk_write(ops, ordered=False)

    async def pending(self, account_id: str, limit: int = 1000) -> list[ActivityConfirmation]:
        cursor = self._col.find({"account_id": account_id}).sort("uid", 1).limit(limit)
        return [
            ActivityConfirmation.model_validate({k: v for k, v in d.items() if k != "_id"})
            async for d in cursor
        ]

    async def accounts(self) -> set[str]:
        """The accounts with confirmations waiting: one query for all of them."""
        return {str(a) for a in await self._col.distinct("account_id")}

    async def done(self, items: list[ActivityConfirmation]) -> None:
        keys = [_key(c) for c in items]
        if keys:
            await self._col.delete_many({"_id": {"$in": keys}})
