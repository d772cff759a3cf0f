"""Flag changes, expunges, renumberings and moves from the fetcher, applied to the sightings.

An event for a message whose activity is not written yet (the message is still on its
way through dedup) is retried for up to ``wait_s`` before it is given up with a
warning; offsets are committed only after the batch was applied.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import ValidationError
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from schemas.activity_event import ActivityEvent, ActivityEventKind
from schemas.mailbox_event import FlagsChanged, MailboxChange, MailboxEvent, Moved, Remapped
from services.activity_writer.repository import COLLECTION
from services.common.mongo import Document
from services.common.retry import is_retriable

log = logging.getLogger("mailsync.activity_writer.mailbox_events")


def sighting_update(event: MailboxChange, now: dt.datetime) -> dict[str, Any]:
    """The MongoDB update of the sighting an event is about (pure)."""
    if isinstance(event, FlagsChanged):
        return {"$set": {"sightings.$.flags": list(event.flags), "updated_at": now}}
    if isinstance(event, Remapped):
        return {
            "$set": {
                "sightings.$.uidvalidity": event.uidvalidity,
                "sightings.$.uid": event.uid,
                "updated_at": now,
            }
        }
    if isinstance(event, Moved):  # the sighting follows the message (RFC 4315 COPYUID)
        return {
            "$set": {
                "sightings.$.folder": event.folder,
                "sightings.$.folder_role": event.folder_role.value,
                "sightings.$.uidvalidity": event.uidvalidity,
                "sightings.$.uid": event.uid,
                "updated_at": now,
            }
        }
    return {
        "$set": {
            "sightings.$.expunged_at": event.at,
            "sightings.$.expunged_reason": event.reason,
            "updated_at": now,
        }
    }


class MailboxEventLoop:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        db: AsyncDatabase[Document],
        *,
        events_topic: str,
        wait_s: float = 60.0,
    ):
        self._consumer = consumer
        self._producer = producer
        self._col = db[COLLECTION]
        self._events_topic = events_topic
        self._wait_s = wait_s
        self.applied = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batches = await self._consumer.getmany(timeout_ms=500, max_records=500)
            events = []
            for records in batches.values():
                for record in records:
                    try:
                        events.append(MailboxEvent.model_validate_json(record.value or b"").event)
                    except ValidationError as exc:
                        log.error(
                            "invalid mailbox event at %s@%d skipped: %s",
                            record.topic,
                            record.offset,
                            exc,
                        )
            if events and not await self._apply_all(events, stop):
                return
            if batches:
                await self._consumer.commit(
                    {tp: rs[-1].offset + 1 for tp, rs in batches.items() if rs}
                )

    async def _apply_all(self, events: list[MailboxChange], stop: asyncio.Event) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_s
        pending = events
        while pending:
            try:
                pending = [e for e in pending if not await self._apply(e)]
            except PyMongoError as exc:
                if not is_retriable(exc):
                    raise
                log.warning("database unavailable for mailbox events (%s); retrying", exc)
            if not pending:
                break
            if loop.time() > deadline:
                log.warning(
                    "%d mailbox events matched no activity in %.0fs; given up",
                    len(pending),
                    self._wait_s,
                )
                break
            await asyncio.sleep(1.0)
            if stop.is_set():
                return False
        return True

    async def _apply(self, event: MailboxChange) -> bool:
        """True when the event's sighting exists (and is now updated)."""
        loc = event.location
        now = dt.datetime.now(dt.UTC)
        where = {"sightings": {"$elemMatch": loc.model_dump()}}
        after = where
        if isinstance(event, Remapped):  # afterwards the sighting is found at its new place
            moved = {**loc.model_dump(), "uidvalidity": event.uidvalidity, "uid": event.uid}
            after = {"sightings": {"$elemMatch": moved}}
        elif isinstance(event, Moved):
            new = {"folder": event.folder, "uidvalidity": event.uidvalidity, "uid": event.uid}
            after = {"sightings": {"$elemMatch": {**loc.model_dump(), **new}}}
        # update_one, then a read: SecantusDB rejects the positional operator in
        # findAndModify, and the two are equivalent here (one writer per partition).
        result = await self._col.update_one(where, sighting_update(event, now))
        if result.matched_count == 0:
            # A renumbering applied already (a replay after a crash before the commit)
            # is done; anything else waits for its activity to be written.
            return (
                isinstance(event, Remapped | Moved) and await self._col.count_documents(after) > 0
            )
        doc = await self._col.find_one(after, {"account_ids": 1, "message_id": 1, "thread_id": 1})
        if doc is None:
            return False
        self.applied += 1
        out = ActivityEvent(
            kind=ActivityEventKind.UPDATED,
            activity_id=doc["_id"],
            account_ids=tuple(doc.get("account_ids", ())),
            message_id=doc.get("message_id"),
            thread_id=doc.get("thread_id"),
            reason=event.kind,
            at=now,
        )
        await self._producer.send_and_wait(
            self._events_topic, out.model_dump_json().encode(), key=doc["_id"].encode()
        )
        return True
