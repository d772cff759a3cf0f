"""Account records: written to MongoDB ``accounts`` (for the API's reads) and published
on the compacted accounts topic (for the fetchers and dedup), in that order.

A save that fails after the MongoDB write is repeated whole by saving again: both
writes are idempotent replacements keyed on the account id.
"""

from __future__ import annotations

import datetime as dt

from aiokafka import AIOKafkaProducer
from pymongo.asynchronous.database import AsyncDatabase

from schemas.account import AccountRecord
from schemas.account_document import AccountDocument
from services.accounts import publish_account, remove_account
from services.accounts.records import COLLECTION
from services.accounts.removed import mark_removed, unmark_removed
from services.accounts.restore import to_restore
from services.common.mongo import Document
from services.common.settings import CommonSettings


class AccountStore:
    def __init__(
        self, db: AsyncDatabase[Document], producer: AIOKafkaProducer, settings: CommonSettings
    ):
        self._db = db
        self._col = db[COLLECTION]
        self._producer = producer
        self._settings = settings

    async def get(self, account_id: str) -> AccountRecord | None:
        doc = await self._col.find_one({"_id": account_id})
        return AccountDocument.model_validate(doc).record if doc else None

    async def all(self) -> list[AccountRecord]:
        docs = await self._col.find({}).sort("_id", 1).to_list(None)
        return [AccountDocument.model_validate(d).record for d in docs]

    async def save(self, record: AccountRecord) -> None:
        doc = AccountDocument(id=record.account_id, record=record, saved_at=dt.datetime.now(dt.UTC))
        # JSON mode: dates (an import window's ``since``) are not BSON types.
        await self._col.replace_one(
            {"_id": record.account_id}, doc.model_dump(mode="json", by_alias=True), upsert=True
        )
        await unmark_removed(self._db, record.account_id)  # added again after a removal
        await publish_account(self._producer, self._settings, record)

    async def delete(self, account_id: str) -> None:
        # Listed as removed first, so the writer drops what is still in flight for it;
        # then the tombstone: the fetchers stop the account even if the delete fails.
        await mark_removed(self._db, account_id)
        await remove_account(self._producer, self._settings, account_id)
        await self._col.delete_one({"_id": account_id})

    async def restore_topic(self, on_topic: dict[str, AccountRecord]) -> list[str]:
        """Publish again what the accounts topic lacks (:mod:`services.accounts.restore`)."""
        stored = {r.account_id: r for r in await self.all()}
        missing = to_restore(stored, on_topic)
        for record in missing:
            await publish_account(self._producer, self._settings, record)
        return [r.account_id for r in missing]
