"""Accounts removed through the API, listed in MongoDB ``removed_accounts``.

Removing an account stops its fetchers (the tombstone on the accounts topic), but what
they had already published is still on its way through dedup to the activity writer: a
purge that runs meanwhile would see those activities written again, mail of an account
the CRM was told to forget. The writer drops the sightings of the accounts listed here;
saving an account with the same id again takes it off the list.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from pymongo.asynchronous.database import AsyncDatabase

from services.common.mongo import Document

COLLECTION = "removed_accounts"


async def mark_removed(db: AsyncDatabase[Document], account_id: str) -> None:
    now = dt.datetime.now(dt.UTC)
    await db[COLLECTION].replace_one(
        {"_id": account_id}, {"_id": account_id, "removed_at": now}, upsert=True
    )


async def unmark_removed(db: AsyncDatabase[Document], account_id: str) -> None:
    await db[COLLECTION].delete_one({"_id": account_id})


async def removed_among(db: AsyncDatabase[Document], account_ids: Collection[str]) -> set[str]:
    """Which of ``account_ids`` were removed (one query, by ``_id``)."""
    if not account_ids:
        return set()
    cursor = db[COLLECTION].find({"_id": {"$in": sorted(account_ids)}}, {"_id": 1})
    return {doc["_id"] async for doc in cursor}
