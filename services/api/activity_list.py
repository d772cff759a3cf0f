"""``GET /v1/activities`` a page at a time: the filter (pure) and the query (thin).

Newest first, then by id (descending), so activities of the same date have an order and
a page can start right after any of them: the keyset of :func:`after_key`. An activity
without a date sorts last (MongoDB orders null below any date). Like
:class:`~services.activity_writer.queries.ActivityQueries`, the filter restricts to the
viewer's accounts (the ``account_date`` index) and every activity is redacted to the
viewer's sightings before it is returned.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.collection import AsyncCollection

from services.activity_writer.visibility import redact
from services.api.cursors import ActivityKey
from services.common.mongo import Document

SORT = [("date", DESCENDING), ("_id", DESCENDING)]


@dataclass(frozen=True)
class ActivityFilter:
    account_id: str | None = None
    participant: str | None = None
    thread_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def after_key(key: ActivityKey) -> dict[str, Any]:
    """What sorts after ``key`` in :data:`SORT` order."""
    date, activity_id = key
    if date is None:
        return {"date": None, "_id": {"$lt": activity_id}}
    return {
        "$or": [
            {"date": {"$lt": date}},
            {"date": date, "_id": {"$lt": activity_id}},
            {"date": None},  # no date sorts after every date
        ]
    }


def activity_query(
    visible: frozenset[str], f: ActivityFilter, after: ActivityKey | None
) -> dict[str, Any] | None:
    """The MongoDB filter, or None when the viewer can see nothing asked for (an account
    outside ``visible`` filters to nothing, it is not an error)."""
    accounts = sorted(visible if f.account_id is None else visible & {f.account_id})
    if not accounts:
        return None
    parts: list[dict[str, Any]] = [{"account_ids": {"$in": accounts}}]
    if f.participant:
        address = f.participant.strip().lower()
        parts.append(
            {"$or": [{"from.address": address}, {"to.address": address}, {"cc.address": address}]}
        )
    if f.thread_id:
        parts.append({"thread_id": f.thread_id})
    if f.since or f.until:
        parts.append(
            {
                "date": {
                    **({"$gte": f.since} if f.since else {}),
                    **({"$lt": f.until} if f.until else {}),
                }
            }
        )
    if after is not None:
        parts.append(after_key(after))
    return parts[0] if len(parts) == 1 else {"$and": parts}


async def activity_page(
    col: AsyncCollection[Document],
    visible: frozenset[str],
    f: ActivityFilter,
    *,
    after: ActivityKey | None,
    limit: int,
) -> tuple[list[dict[str, Any]], ActivityKey | None]:
    """Up to ``limit`` activities after ``after``, and the key the next page starts
    after (None: no more). One more is read to know whether more follow."""
    query = activity_query(visible, f, after)
    if query is None:
        return [], None
    docs: list[Document] = await col.find(query).sort(SORT).limit(limit + 1).to_list(None)
    page = docs[:limit]
    last = page[-1] if len(docs) > limit else None
    shown = [d for d in (redact(doc, visible) for doc in page) if d is not None]
    return shown, ((last.get("date"), last["_id"]) if last is not None else None)
