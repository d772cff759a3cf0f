"""The send ledger in MongoDB (``send_requests``): what makes a send happen once.

A request is recorded (``accepted``) before anything is sent, keyed by its request id,
so a request delivered twice by Kafka is one record. A replica works on a record only
while it holds its lease (a conditional update, atomic on one document), so two
replicas never send the same request. Each state reached is written here before it is
announced; states not yet announced are kept in ``unpublished`` and announced again
after a crash (results are at least once).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from schemas.send_request import SendRecord, SendRequest, SendState
from services.common.mongo import Document

ACTIVE = (SendState.ACCEPTED, SendState.SENDING, SendState.SENT)


class LeaseLost(Exception):
    """Another replica took the record over (our lease expired): stop working on it."""


def _doc(record: SendRecord) -> Document:
    return record.model_dump(mode="python", by_alias=True)


class SendLedger:
    def __init__(self, db: AsyncDatabase[Document], owner: str, lease: dt.timedelta):
        self._col = db["send_requests"]
        self._owner = owner
        self._lease = lease

    async def ensure_indexes(self) -> None:
        await self._col.create_index([("state", ASCENDING), ("next_attempt_at", ASCENDING)])
        await self._col.create_index([("unpublished", ASCENDING)])
        await self._col.create_index([("request.account_id", ASCENDING), ("created_at", ASCENDING)])

    async def accept(self, request: SendRequest, message_id: str) -> tuple[SendRecord, bool]:
        """Record ``request``; returns the record and whether it is new.

        An existing record with the same id is returned as it is: a redelivered request
        must not be sent again, whatever state it reached.
        """
        now = dt.datetime.now(dt.UTC)
        record = SendRecord(
            id=request.request_id,
            request=request,
            state=SendState.ACCEPTED,
            message_id=message_id,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
        try:
            await self._col.insert_one(_doc(record))
        except DuplicateKeyError:
            existing = await self.get(request.request_id)
            if existing is None:  # removed in between: nothing sensible but to retry
                raise
            return existing, False
        return record, True

    async def get(self, request_id: str) -> SendRecord | None:
        doc = await self._col.find_one({"_id": request_id})
        return SendRecord.model_validate(doc) if doc is not None else None

    async def claim_due(self, limit: int) -> list[SendRecord]:
        """Take the lease of up to ``limit`` records that have work to do now."""
        now = dt.datetime.now(dt.UTC)
        free: list[dict[str, Any]] = [{"lease_until": None}, {"lease_until": {"$lt": now}}]
        due: list[dict[str, Any]] = [
            # An active record without a retry time is due now (never forgotten).
            {"state": {"$in": [s.value for s in ACTIVE]}, "next_attempt_at": {"$lte": now}},
            {"state": {"$in": [s.value for s in ACTIVE]}, "next_attempt_at": None},
            {"unpublished": {"$in": [s.value for s in SendState]}},
        ]
        cursor = self._col.find({"$and": [{"$or": due}, {"$or": free}]}, {"_id": 1}).limit(limit)
        claimed: list[SendRecord] = []
        async for doc in cursor:
            got = await self._col.update_one(
                {"_id": doc["_id"], "$or": free},
                {"$set": {"lease_owner": self._owner, "lease_until": now + self._lease}},
            )
            if got.modified_count == 1:
                record = await self.get(doc["_id"])
                if record is not None:
                    claimed.append(record)
        return claimed

    async def advance(self, record: SendRecord, state: SendState, **fields: Any) -> SendRecord:
        """Move ``record`` to ``state`` (durably, still under our lease)."""
        now = dt.datetime.now(dt.UTC)
        # Attempts count tries of the current step: sending, then filing.
        update = {"attempts": 0, **fields, "state": state.value, "updated_at": now}
        announce = state in (SendState.SENT, SendState.FILED, SendState.FAILED)
        ops: Document = {"$set": update}
        if announce:
            ops["$addToSet"] = {"unpublished": state.value}
        got = await self._col.update_one({"_id": record.id, "lease_owner": self._owner}, ops)
        if got.matched_count != 1:
            raise LeaseLost(record.id)
        unpublished = record.unpublished + ((state,) if announce else ())
        return record.model_copy(
            update={"attempts": 0, **fields, "state": state, "unpublished": unpublished}
        )

    async def retry_later(
        self, record: SendRecord, when: dt.datetime, reason: str, *, count: bool
    ) -> None:
        """Give the record back until ``when``; ``count`` it as a failed try."""
        ops: Document = {"$set": {"next_attempt_at": when, "reason": reason, "lease_until": None}}
        if count:
            ops["$inc"] = {"attempts": 1}
        await self._col.update_one({"_id": record.id, "lease_owner": self._owner}, ops)

    async def published(self, record: SendRecord, state: SendState) -> None:
        await self._col.update_one({"_id": record.id}, {"$pull": {"unpublished": state.value}})

    async def release(self, record: SendRecord) -> None:
        await self._col.update_one(
            {"_id": record.id, "lease_owner": self._owner}, {"$set": {"lease_until": None}}
        )
