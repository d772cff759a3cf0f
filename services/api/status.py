"""What the status page shows: the caller's accounts with their state and initial-sync
progress, recent activities, and the messages seen in more than one mailbox."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from schemas._base import Model
from services.activity_writer.visibility import redact
from services.api.account_management import Accounts
from services.api.callers import Caller
from services.api.models import MailboxView
from services.api.resources import Resources


class SightingLine(Model):
    account_id: str
    folder: str
    duplicate: bool


class ActivityLine(Model):
    activity_id: str
    date: dt.datetime | None
    direction: str
    sender: str
    subject: str
    sightings: tuple[SightingLine, ...]


class StatusView(Model):
    generated_at: dt.datetime
    accounts: tuple[MailboxView, ...]
    activities_total: int = Field(description="Activities the caller may see.")
    recent: tuple[ActivityLine, ...]
    duplicates: tuple[ActivityLine, ...] = Field(
        description="Recent activities seen in more than one of the caller's mailboxes."
    )


def _line(doc: dict[str, Any]) -> ActivityLine:
    return ActivityLine(
        activity_id=doc["_id"],
        date=doc.get("date"),
        direction=doc.get("direction", ""),
        sender=(doc.get("from") or {}).get("address", ""),
        subject=doc.get("subject", ""),
        sightings=tuple(
            SightingLine(account_id=s["account_id"], folder=s["folder"], duplicate=s["duplicate"])
            for s in doc.get("sightings", [])
        ),
    )


async def snapshot(res: Resources, caller: Caller, limit: int = 20) -> StatusView:
    accounts = await Accounts(res).mailboxes(caller)
    visible = frozenset(a.account_id for a in accounts)
    recent = await res.activities.list(visible, limit=limit)
    col = res.activities_collection
    total, duplicates = 0, []
    if visible:
        mine = {"account_ids": {"$in": sorted(visible)}}
        total = await col.count_documents(mine)
        # Held by two accounts or more; only those with two *visible* sightings are shown.
        query = {**mine, "sightings.1": {"$exists": True}}
        async for doc in col.find(query).sort("date", -1).limit(limit * 3):
            shown = redact(doc, visible)
            if shown is not None and len(shown["sightings"]) > 1:
                duplicates.append(_line(shown))
    return StatusView(
        generated_at=dt.datetime.now(dt.UTC),
        accounts=tuple(accounts),
        activities_total=total,
        recent=tuple(_line(d) for d in recent),
        duplicates=tuple(duplicates[:limit]),
    )
