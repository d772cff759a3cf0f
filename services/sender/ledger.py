"""The send ledger in MongoDB (``send_requests``): what makes a send happen once.

A request is recorded (``accepted``) before anything is sent, keyed by its request id,
so a request delivered twice by Kafka is one record. A replica works on a record only
while it holds its lease (a conditional update, atomic on one document), so two
replicas never send the same request. The lease is short and renewed while the task
runs (:meth:`SendLedger.renew`, the app's heartbeat): a live replica keeps its work
however long a send takes, and a dead one's work is free again within one lease, for
any replica (the dead one restarted included) to take over. Each state reached is
written here before it is announced; states not yet announced are kept in
``unpublished`` and announced again after a crash (results are at least once).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any, NamedTuple

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from schemas.send_request import SendRecord, SendRequest, SendState
from services.common.mongo import Document, insert_new
from services.sender.fairness import fair_pick
from services.sender.group_commit import GroupCommit

# Due records read at once: at least this many per record a claim has room for (the
# accounts the fair pick chooses among), and at least _READ. A read costs the database a
# pass over every due record whatever its limit (SecantusDB decodes each candidate, then
# applies the limit: ~16 ms at 400 due), so it takes what later claims can pick from
# instead of reading the backlog again every few claims; ids only, ~50 bytes each.
_WINDOW = 4
_READ = 512
# How long due records read once are claimed from before the ledger is read again.
_REREAD_S = 1.0
ACTIVE = (SendState.ACCEPTED, SendState.SENDING, SendState.SENT)
# Results a request's record is announced with, in the order they can be reached.
ANNOUNCED = (SendState.SENT, SendState.FILED, SendState.FAILED, SendState.UNKNOWN)


def lease_end(now: dt.datetime, lease: dt.timedelta) -> dt.datetime:
    """When a lease taken (or renewed) ``now`` ends, to the millisecond BSON keeps."""
    until = now + lease
    return until.replace(microsecond=(until.microsecond // 1000) * 1000)


class LeaseLost(Exception):
    """Another replica took the record over (our lease expired): stop working on it."""


class _Due(NamedTuple):
    """A due record as read: its account, and how it was found (which query of
    :func:`_due`; free or under an expired lease), which its claim asks again."""

    account: str
    due: int
    expired: bool


def _due(now: dt.datetime) -> tuple[Document, Document]:
    """Queries for records due now: active, its retry time reached (or none set:
    never forgotten); and with a result still to announce."""
    active = {
        "state": {"$in": [s.value for s in ACTIVE]},
        "next_attempt_at": {"$not": {"$gt": now}},
    }
    return active, {"unpublished": {"$in": [s.value for s in SendState]}}


def _doc(record: SendRecord) -> Document:
    return record.model_dump(mode="python", by_alias=True)


class SendLedger:
    def __init__(self, db: AsyncDatabase[Document], owner: str, lease: dt.timedelta):
        self._col = db["send_requests"]
        self._owner = owner
        self._writes = GroupCommit(self._col, owner)
        self._lease = lease
        # Due records read by the last claim and not claimed yet (see claim_due).
        self._window: dict[str, _Due] = {}
        self._window_read = -math.inf
        self._window_whole = False  # it held every due record there was

    async def ensure_indexes(self) -> None:
        await self._col.create_index([("state", ASCENDING), ("next_attempt_at", ASCENDING)])
        await self._col.create_index([("unpublished", ASCENDING)])
        await self._col.create_index([("request.account_id", ASCENDING), ("created_at", ASCENDING)])

    async def accept(
        self, requests: Sequence[tuple[SendRequest, str]]
    ) -> list[tuple[SendRecord, bool]]:
        """Record each (request, Message-ID); returns each record and whether it is new.

        An existing record with the same id is returned as it is: a redelivered request
        must not be sent again, whatever state it reached. All go in one unordered
        insert (one command for the batch); the ones refused as duplicates are read.
        """
        now = dt.datetime.now(dt.UTC)
        records = [
            SendRecord(
                id=request.request_id,
                request=request,
                state=SendState.ACCEPTED,
                message_id=message_id,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
            for request, message_id in requests
        ]
        if not records:
            return []
        duplicates = set(await insert_new(self._col, [_doc(r) for r in records]))
        out = []
        for i, record in enumerate(records):
            if i not in duplicates:
                # Due and free as written: the next claim picks it from the records it
                # keeps, with no read of the ledger (the claim checks it afresh anyway).
                self._window[record.id] = _Due(record.request.account_id, 0, False)
                out.append((record, True))
                continue
            existing = await self.get(record.id)
            if existing is None:  # removed in between: nothing sensible but to retry
                raise LookupError(f"request {record.id} vanished from the ledger")
            out.append((existing, False))
        return out

    async def get(self, request_id: str) -> SendRecord | None:
        doc = await self._col.find_one({"_id": request_id})
        return SendRecord.model_validate(doc) if doc is not None else None

    async def claim_due(
        self, limit: int, busy: Collection[str] = (), in_flight: Mapping[str, int] | None = None
    ) -> list[SendRecord]:
        """Take the lease of up to ``limit`` records that have work to do now, other
        than the ``busy`` ones (this process's tasks still work on them), round-robin
        across accounts (:func:`~services.sender.fairness.fair_pick`; ``in_flight``:
        this process's requests in hand per account).

        Due: active and its retry time reached (or none set: never forgotten), or a
        result still to announce. Free: no lease, or one that expired (a dead replica).
        """
        now = dt.datetime.now(dt.UTC)
        # Reading the due records costs the database a pass over all of them whatever
        # the limit (SecantusDB decodes each one: ~15 ms a query at 300), so the ids
        # read are kept, with those accepted here since, and later claims pick from
        # them until they run short or _REREAD_S passed (retries come due, other
        # replicas accept requests and their leases run out). A kept id may have been
        # taken or settled since: the claim below asks again that each record be free
        # and due, atomically.
        kept = {i: w for i, w in self._window.items() if i not in busy}
        stale = time.monotonic() - self._window_read > _REREAD_S
        if stale or (len(kept) < limit and not self._window_whole):
            kept = await self._read_due(now, limit, busy)
            self._window_read = time.monotonic()
        chosen = fair_pick([(i, w.account) for i, w in kept.items()], limit, in_flight)
        self._window = {i: w for i, w in kept.items() if i not in chosen}
        if not chosen:
            return []
        # One conditional update per way a record was found (one commit, not one per
        # record): each record is still taken atomically, only if still free and due
        # as it was found (no $or: with one the database reads every record instead
        # of these few by _id). What we took carries our owner and this very
        # lease_until (BSON keeps milliseconds), telling it apart from an older lease
        # of ours or one another replica took meanwhile.
        until = lease_end(now, self._lease)
        claim = {"$set": {"lease_owner": self._owner, "lease_until": until}}
        due = _due(now)
        for how in {(kept[i].due, kept[i].expired) for i in chosen}:
            ids = [i for i in chosen if (kept[i].due, kept[i].expired) == how]
            lease = {"$lt": now} if how[1] else None
            await self._col.update_many(
                {"_id": {"$in": ids}, "lease_until": lease, **due[how[0]]}, claim
            )
        mine = self._col.find(
            {"_id": {"$in": chosen}, "lease_owner": self._owner, "lease_until": until}
        )
        return [SendRecord.model_validate(doc) async for doc in mine]

    async def _read_due(
        self, now: dt.datetime, limit: int, busy: Collection[str]
    ) -> dict[str, _Due]:
        """Due and free records, oldest first: a window of several times ``limit``
        (the accounts the fair pick chooses among), and from accounts not in a full
        window, up to ``limit`` more (a quiet account's request behind a busy one's
        backlog). Returns them by id."""
        active, _ = due = _due(now)
        # Four narrow queries, not one with $or: each is answered from an index (state,
        # unpublished), where an $or makes the database read every record the ledger
        # ever held, on every claim (measured: 60-90 ms at 600 records on SecantusDB).
        expired = {"$lt": now}
        window = max(limit * _WINDOW, _READ)
        found: dict[str, _Due] = {}
        for kind in (0, 1):
            for lease in (None, expired):
                if len(found) < window:
                    query = {**due[kind], "lease_until": lease}
                    if busy:
                        query["_id"] = {"$nin": list(busy)}
                    await self._candidates(query, window, (kind, lease is not None), found)
        self._window_whole = len(found) < window
        if not self._window_whole:
            query = {**active, "lease_until": None}
            query["request.account_id"] = {"$nin": sorted({w.account for w in found.values()})}
            if busy:
                query["_id"] = {"$nin": list(busy)}
            await self._candidates(query, limit, (0, False), found)
        return found

    async def _candidates(
        self, query: Document, limit: int, how: tuple[int, bool], found: dict[str, _Due]
    ) -> None:
        cursor = self._col.find(query, {"_id": 1, "request.account_id": 1})
        async for doc in cursor.limit(limit).batch_size(limit):  # one round trip
            found.setdefault(doc["_id"], _Due(doc["request"]["account_id"], *how))

    async def advance(
        self, record: SendRecord, state: SendState, *, via: SendState | None = None, **fields: Any
    ) -> SendRecord:
        """Move ``record`` to ``state`` (durably, still under our lease); ``via``: a
        state passed on the way, announced before ``state`` but written with it."""
        # Attempts count tries of the current step: sending, then filing.
        update = {"attempts": 0, **fields, "state": state.value}
        reached = tuple(s for s in (via, state) if s is not None and s in ANNOUNCED)
        # The server stamps the time, so the same step of many requests is the same
        # update, and the group commit writes them as one.
        ops: Document = {"$set": update, "$currentDate": {"updated_at": True}}
        if reached:
            ops["$addToSet"] = {"unpublished": {"$each": [s.value for s in reached]}}
        if not await self._writes.update(record.id, ops):
            raise LeaseLost(record.id)
        unpublished = record.unpublished + reached
        return record.model_copy(
            update={"attempts": 0, **fields, "state": state, "unpublished": unpublished}
        )

    async def retry_later(
        self, record: SendRecord, when: dt.datetime, reason: str, *, count: bool
    ) -> None:
        """Give the record back until ``when``; ``count`` it as a failed try. Freed at
        once, so a crash before the task ends leaves nothing to wait out (the pump
        never claims what its own tasks still hold: ``claim_due(busy=...)``)."""
        ops: Document = {"$set": {"next_attempt_at": when, "reason": reason, "lease_until": None}}
        if count:
            ops["$inc"] = {"attempts": 1}
        await self._writes.update(record.id, ops)

    async def settle(self, record: SendRecord, announced: tuple[SendState, ...]) -> None:
        """Done with ``record`` for now: its ``announced`` results are out, the lease free.

        One write for both: a crash before it announces them again (at least once).
        """
        ops: Document = {"$set": {"lease_until": None}}
        if announced:
            ops["$pull"] = {"unpublished": {"$in": [s.value for s in announced]}}
        await self._writes.update(record.id, ops)

    async def renew(self, request_ids: Collection[str]) -> set[str]:
        """Extend our lease of the records our tasks still work on (the heartbeat);
        returns the ids whose lease is no longer ours (taken over: our lease ran out).

        Only a lease still held is extended: one a task has just given back (settled,
        released, put off for a retry) stays free, so it is due again at once.
        """
        if not request_ids:
            return set()
        ids = list(request_ids)
        until = lease_end(dt.datetime.now(dt.UTC), self._lease)
        held = {"_id": {"$in": ids}, "lease_owner": self._owner, "lease_until": {"$ne": None}}
        await self._col.update_many(held, {"$set": {"lease_until": until}})
        ours = self._col.find({"_id": {"$in": ids}, "lease_owner": self._owner}, {"_id": 1})
        return set(ids) - {doc["_id"] async for doc in ours}

    async def release(self, record: SendRecord) -> None:
        await self._writes.update(record.id, {"$set": {"lease_until": None}})
