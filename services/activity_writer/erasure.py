"""Deleting activities: retention per account, and erasure on request (GDPR art. 17).

Erasing deletes the activities, removes them from ``message_ids`` (with the Message-IDs
no activity carries any more), sets the subject threads of their keys again from what
remains (``thread_keys``; a key no activity has any more goes), removes their
attachments and raw messages from the blob store unless another activity (or another
message's manifest) still uses them, and publishes a ``deleted`` event for each. Retention
works per account: an account's sightings older than its ``retention_days`` are
removed; an activity with no sighting left is erased; one still held by another
account only loses that sighting (and an ``updated`` event says so).

Both leave a tombstone for every sighting they delete, before deleting it (see
``schemas/tombstone.py``): a message deleted while it is still on the server is never
imported again, by the fetcher's reconcile or import, or by a record still on its way
to the writer. Removing an account leaves none (the account's tombstones go with it).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from pymongo.asynchronous.database import AsyncDatabase

from schemas.account import AccountRecord
from schemas.activity_event import ActivityEvent, ActivityEventKind
from schemas.tombstone import TombstoneReason
from services.accounts.tombstone_rules import left_by
from services.accounts.tombstones import TombstoneStore
from services.activity_writer.message_ids import MessageIdIndex
from services.activity_writer.repository import COLLECTION
from services.activity_writer.thread_keys import ThreadKeys
from services.common.blobs import BlobStore
from services.common.mongo import Document

log = logging.getLogger("mailsync.activity_writer.erasure")

_PROJECTION = {
    "account_ids": 1,
    "message_id": 1,
    "thread_id": 1,
    "thread_key": 1,
    "attachments.sha256": 1,
    "sightings": 1,
}


@dataclass(frozen=True)
class RetentionResult:
    account_id: str
    deleted: int
    trimmed: int


class Eraser:
    def __init__(
        self,
        db: AsyncDatabase[Document],
        blobs: BlobStore,
        producer: AIOKafkaProducer,
        events_topic: str,
    ):
        self._col = db[COLLECTION]
        self._blobs = blobs
        self._producer = producer
        self._events_topic = events_topic
        self._tombstones = TombstoneStore(db)
        self._message_ids = MessageIdIndex(db)
        self._thread_keys = ThreadKeys(db)

    async def erase(
        self, query: dict[str, Any], reason: str, tombstone: TombstoneReason | None = "erased"
    ) -> int:
        """Delete every activity matching ``query``; return how many. Every sighting of
        them leaves a ``tombstone`` of this kind first (None: none, the account goes)."""
        docs = await self._col.find(query, _PROJECTION).to_list(None)
        if not docs:
            return 0
        if tombstone is not None:
            now = dt.datetime.now(dt.UTC)
            await self._tombstones.add([t for d in docs for t in left_by(d, None, tombstone, now)])
        await self._col.delete_many({"_id": {"$in": [d["_id"] for d in docs]}})
        # After the delete: stopped in between, an id is left naming no activity, which
        # the writer never links (before it, a live activity would miss its entry).
        await self._message_ids.forget(
            (d["message_id"], d["_id"]) for d in docs if d.get("message_id")
        )
        # Stopped before this, a key may name the thread of an erased activity until
        # the next erasure or thread change of that key: an id, no content.
        await self._thread_keys.recompute(
            {d["thread_key"] for d in docs if d.get("thread_key")}, self._col
        )
        shas = {a["sha256"] for d in docs for a in d.get("attachments", [])}
        shas |= {s["raw_blob"] for d in docs for s in d.get("sightings", []) if s.get("raw_blob")}
        removed = await self._blobs.collect(shas, self._in_use)
        now = dt.datetime.now(dt.UTC)
        await self._publish(
            ActivityEvent(
                kind=ActivityEventKind.DELETED,
                activity_id=d["_id"],
                account_ids=tuple(d.get("account_ids", ())),
                message_id=d.get("message_id"),
                thread_id=d.get("thread_id"),
                reason=reason,
                at=now,
            )
            for d in docs
        )
        log.info("erased %d activities (%s); %d blobs removed", len(docs), reason, removed)
        return len(docs)

    async def apply_retention(self, account: AccountRecord, now: dt.datetime) -> RetentionResult:
        if account.retention_days is None:
            return RetentionResult(account.account_id, 0, 0)
        cutoff = now - dt.timedelta(days=account.retention_days)
        return await self.remove_account(
            account.account_id, {"$lt": cutoff}, f"retention of {account.account_id}", "retention"
        )

    async def remove_account(
        self,
        acc: str,
        date: dict[str, dt.datetime] | None,
        reason: str,
        tombstone: TombstoneReason | None = "erased",
    ) -> RetentionResult:
        """Remove one account's sightings (of messages in the ``date`` range, if given),
        leaving a ``tombstone`` of this kind for each (None: none)."""
        now = dt.datetime.now(dt.UTC)
        old: dict[str, Any] = {"account_ids": acc}
        if date:
            old["date"] = date
        # Held by this account alone: the whole activity goes.
        deleted = await self.erase({**old, "account_ids.1": {"$exists": False}}, reason, tombstone)
        # Held by others too: only this account's sightings go.
        shared = await self._col.find(old, _PROJECTION).to_list(None)
        if shared:
            if tombstone is not None:
                await self._tombstones.add(
                    [t for d in shared for t in left_by(d, {acc}, tombstone, now)]
                )
            await self._col.update_many(
                {"_id": {"$in": [d["_id"] for d in shared]}},
                {
                    "$pull": {"sightings": {"account_id": acc}, "account_ids": acc},
                    "$set": {"updated_at": now},
                },
            )
            # The first sighting left is canonical now: every activity keeps exactly one.
            await self._col.update_many(
                {"_id": {"$in": [d["_id"] for d in shared]}},
                {"$set": {"sightings.0.duplicate": False}},
            )
            # A copy of its own (a list footer, say) goes with the sighting.
            raw = {
                s["raw_blob"]
                for d in shared
                for s in d.get("sightings", [])
                if s.get("account_id") == acc and s.get("raw_blob")
            }
            await self._blobs.collect(raw, self._in_use)
            await self._publish(
                ActivityEvent(
                    kind=ActivityEventKind.UPDATED,
                    activity_id=d["_id"],
                    account_ids=tuple(a for a in d.get("account_ids", ()) if a != acc),
                    message_id=d.get("message_id"),
                    thread_id=d.get("thread_id"),
                    reason=reason,
                    at=now,
                )
                for d in shared
            )
        return RetentionResult(acc, deleted, len(shared))

    async def _in_use(self, sha: str) -> bool:
        """Whether a remaining activity names the blob, as an attachment or a raw message."""
        query = {"$or": [{"attachments.sha256": sha}, {"sightings.raw_blob": sha}]}
        return await self._col.find_one(query, {"_id": 1}) is not None

    async def _publish(self, events: Iterable[ActivityEvent]) -> None:
        pending = [
            await self._producer.send(
                self._events_topic, e.model_dump_json().encode(), key=e.activity_id.encode()
            )
            for e in events
        ]
        await asyncio.gather(*pending)
