"""The activity queries the API uses; every one is bounded by what the viewer may see.

Callers pass the viewer's visible account ids (:func:`visibility.visible_accounts`);
the database filter restricts by them (on the ``account_date`` index) and
:func:`visibility.redact` removes the sightings of other accounts before anything is
returned.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.activity_writer.repository import COLLECTION
from services.activity_writer.visibility import redact
from services.common.mongo import Document


class ActivityQueries:
    def __init__(self, db: AsyncDatabase[Document]):
        self._col = db[COLLECTION]

    async def list(
        self,
        visible: frozenset[str],
        *,
        account_id: str | None = None,
        participant: str | None = None,
        thread_id: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Newest first. ``account_id`` outside ``visible`` gives nothing, not an error."""
        accounts = sorted(visible if account_id is None else visible & {account_id})
        if not accounts:
            return []
        query: dict[str, Any] = {"account_ids": {"$in": accounts}}
        if participant:
            address = participant.strip().lower()
            query["$or"] = [
                {"from.address": address},
                {"to.address": address},
                {"cc.address": address},
            ]
        if thread_id:
            query["thread_id"] = thread_id
        if since or until:
            query["date"] = {
                **({"$gte": since} if since else {}),
                **({"$lt": until} if until else {}),
            }
        cursor = self._col.find(query).sort("date", -1).limit(limit)
        out = []
        async for doc in cursor:
            shown = redact(doc, visible)
            if shown is not None:
                out.append(shown)
        return out

    async def get(self, visible: frozenset[str], activity_id: str) -> dict[str, Any] | None:
        doc = await self._col.find_one({"_id": activity_id})
        return redact(doc, visible) if doc else None
