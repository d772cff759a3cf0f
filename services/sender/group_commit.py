"""Ledger updates of requests in flight, written together (group commit).

Each request's state change is one update, conditional on our lease, that its task
awaits before its next step. Tasks that ask while a write is under way wait for it to
end, and then all of theirs go as one unordered ``bulk_write`` (they touch different
records), the same update of several records (every request reaching ``sending``, or
done and released) as one ``update_many``: a server spends its time per statement,
each its own commit (SecantusDB: 8 records in 15 ms one by one, in 3 ms as one).
Every caller still learns whether its own update matched (the lease is still ours),
and none is answered before the server acknowledged it, so a state is as durable,
and reached in the same order per record, as with one write each.
"""

from __future__ import annotations

import asyncio

import bson
from pymongo import UpdateMany, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from services.common.mongo import Document

_Pending = tuple[Document, str, "asyncio.Future[bool]"]


class GroupCommit:
    def __init__(self, collection: AsyncCollection[Document], owner: str):
        self._col = collection
        self._owner = owner
        self._waiting: list[_Pending] = []
        self._turn = asyncio.Lock()  # one write at a time

    async def update(self, record_id: str, update: Document) -> bool:
        """Apply ``update`` to record ``record_id`` if its lease is ours; True if it was."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((update, record_id, done))
        async with self._turn:
            if not done.done():  # nobody wrote ours yet: write everything waiting
                batch, self._waiting = self._waiting, []
                await self._write(batch)
        return done.result()

    async def _write(self, batch: list[_Pending]) -> None:
        alike: dict[bytes, list[_Pending]] = {}
        for pending in batch:
            alike.setdefault(bson.encode(pending[0]), []).append(pending)
        groups = list(alike.values())
        ops: list[UpdateOne | UpdateMany] = []
        for group in groups:
            ids = [rid for _, rid, _ in group]
            if len(ids) == 1:
                ops.append(UpdateOne({"_id": ids[0], "lease_owner": self._owner}, group[0][0]))
            else:
                ops.append(
                    UpdateMany({"_id": {"$in": ids}, "lease_owner": self._owner}, group[0][0])
                )
        failed: dict[str, Exception] = {}
        try:
            result = await self._col.bulk_write(ops, ordered=False)
            matched = result.matched_count
        except BulkWriteError as exc:
            matched = exc.details.get("nMatched", 0)
            for error in exc.details["writeErrors"]:
                for _, rid, _ in groups[error["index"]]:
                    failed[rid] = BulkWriteError({"writeErrors": [error]})
        except Exception as exc:
            for _, _, done in batch:
                done.set_exception(exc)  # the writer's own caller too, through its future
            return
        except BaseException:
            # This writer was cancelled (shutdown): the next one writes the batch. Its
            # updates are idempotent but for a try counted twice if this one got through.
            self._waiting[:0] = batch
            raise
        ids = [rid for _, rid, _ in batch if rid not in failed]
        if matched == len(ids):
            found = set(ids)
        else:
            # Some did not match (a lease another replica took over): which ones? Each
            # asked for our lease, so the records that still carry it are the ones.
            mine = {"_id": {"$in": ids}, "lease_owner": self._owner}
            found = {d["_id"] async for d in self._col.find(mine, {"_id": 1})}
        for _, rid, done in batch:
            if rid in failed:
                done.set_exception(failed[rid])
            else:
                done.set_result(rid in found)
