"""What the status page shows: the caller's accounts with their state, initial-sync
progress and folder errors, recent activities, the messages seen in more than one
mailbox, and how many activities were written per minute; to admins also the
pipeline as Kafka shows it (each service's consumers and lag, the dead letters)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable
from typing import Any

from pydantic import AwareDatetime, Field

from schemas._base import Model
from services.activity_writer.visibility import redact
from services.api.account_management import Accounts
from services.api.callers import Caller
from services.api.models import MailboxView
from services.api.pipeline_view import PipelineView
from services.api.resources import Resources
from services.api.throughput import Throughput, per_minute, window_start


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


class FolderErrorLine(Model):
    account_id: str
    address: str
    folder: str
    error: str
    since: AwareDatetime | None = Field(
        description="When the error was first seen; null: recorded before this was kept."
    )


class StatusView(Model):
    generated_at: dt.datetime
    accounts: tuple[MailboxView, ...]
    folder_errors: tuple[FolderErrorLine, ...] = Field(
        description="Folders of the caller's accounts that the fetcher cannot sync."
    )
    activities_total: int = Field(description="Activities the caller may see.")
    throughput: Throughput = Field(
        description="New activities of the caller's accounts per minute, last 15 minutes."
    )
    recent: tuple[ActivityLine, ...]
    duplicates: tuple[ActivityLine, ...] = Field(
        description="Recent activities seen in more than one of the caller's mailboxes."
    )
    pipeline: PipelineView | None = Field(
        description="Each service's consumer groups and lag, and the dead letters, as Kafka "
        "shows them; for admins (null for other callers)."
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


def folder_errors(accounts: Iterable[MailboxView]) -> tuple[FolderErrorLine, ...]:
    """Every folder with an error, account by account, as its state records it."""
    return tuple(
        FolderErrorLine(
            account_id=a.account_id,
            address=a.address,
            folder=f.folder,
            error=f.error,
            since=f.error_since,
        )
        for a in accounts
        if a.state is not None
        for f in a.state.folders
        if f.error is not None
    )


async def _throughput(res: Resources, visible: frozenset[str], now: dt.datetime) -> Throughput:
    created: list[dt.datetime] = []
    if visible:
        query = {
            "account_ids": {"$in": sorted(visible)},
            "created_at": {"$gte": window_start(now)},
        }
        async for doc in res.activities_collection.find(query, {"created_at": 1}):
            created.append(doc["created_at"])
    return per_minute(created, now)


async def snapshot(res: Resources, caller: Caller, limit: int = 20) -> StatusView:
    # Kafka is read meanwhile (at most TIMEOUT_S when it does not answer).
    pipeline = asyncio.create_task(res.pipeline.view()) if caller.admin else None
    try:
        view = await _snapshot(res, caller, limit)
        return view.model_copy(update={"pipeline": await pipeline if pipeline else None})
    finally:
        if pipeline is not None and not pipeline.done():  # MongoDB failed: nobody waits
            pipeline.cancel()


async def _snapshot(res: Resources, caller: Caller, limit: int) -> StatusView:
    """Everything but the pipeline, from MongoDB."""
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
    now = dt.datetime.now(dt.UTC)
    return StatusView(
        generated_at=now,
        accounts=tuple(accounts),
        folder_errors=folder_errors(accounts),
        activities_total=total,
        throughput=await _throughput(res, visible, now),
        recent=tuple(_line(d) for d in recent),
        duplicates=tuple(duplicates[:limit]),
        pipeline=None,
    )
