"""On-demand reconcile requests, in MongoDB (collection ``reconcile_requests``).

``mailsync reconcile ACCOUNT`` stores a request; the replica that syncs the account
reads it with all the others at once (:mod:`.due_work`, every
``MAILSYNC_FETCHER_POLL_INTERVAL_S``), reconciles at the account's next poll, and then
removes it. MongoDB rather than a topic: the request is a state ("reconcile once
more"), asking twice is asking once, and it waits there while the account is down.
"""

from __future__ import annotations

import datetime as dt

from pymongo.asynchronous.database import AsyncDatabase

from services.common.mongo import Document


class ReconcileRequests:
    def __init__(self, db: AsyncDatabase[Document]):
        self._col = db["reconcile_requests"]

    async def request(self, account_id: str) -> dt.datetime:
        now = dt.datetime.now(dt.UTC)
        await self._col.replace_one(
            {"_id": account_id}, {"_id": account_id, "requested_at": now}, upsert=True
        )
        return now

    async def pending(self, account_id: str) -> dt.datetime | None:
        doc = await self._col.find_one({"_id": account_id})
        return doc["requested_at"] if doc else None

    async def all(self) -> dict[str, dt.datetime]:
        """Every request waiting, by account: one query however many accounts there are."""
        found = self._col.find({}, {"requested_at": 1})
        return {d["_id"]: d["requested_at"] async for d in found}

    async def done(self, account_id: str, requested_at: dt.datetime) -> None:
        """Remove the request answered; one made meanwhile stays."""
        await self._col.delete_one({"_id": account_id, "requested_at": requested_at})
