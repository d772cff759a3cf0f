"""Ledger updates of requests in flight, written together (group commit).

Each request's state change is one update, conditional on our lease, that its task awaits
before its next step. Tasks that ask while a bulk write is under way wait for it to
end, and then all of theirs go as one unordered ``bulk_write`` (they touch different
records): one round trip and one command for many, where a server spends most of
its time per command (SecantusDB: 1.5 ms for an update alone, 0.5 ms in a batch of
8). Every caller still learns whether its own update matched (the lease is still
ours), and nothing is acknowledged before the server acknowledged it, so a state is
as durable, and reached in the same order per record, as with one write each.
"""

from __future__ import annotations

import asyncio

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from services.common.mongo import Document

_Pending = tuple[UpdateOne, str, "asyncio.Future[bool]"]


class GroupCommit:
    def __init__(self, collection: AsyncCollection[Document], owner: str):
        self._col = collection
        self._owner = owner
        self._waiting: list[_Pending] = []
        self._turn = asyncio.Lock()  # one bulk write at a time

    async def update(self, record_id: str, update: Document) -> bool:
        """Apply ``update`` to record ``record_id`` if its lease is ours; True if it was."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        op = UpdateOne({"_id": record_id, "lease_owner": self._owner}, update)
        self._waiting.append((op, record_id, done))
        async with self._turn:
            if not done.done():  # nobody wrote ours yet: write everything waiting
                batch, self._waiting = self._waiting, []
                await self._write(batch)
        return done.result()

    async def _write(self, batch: list[_Pending]) -> None:
        try:
            result = await self._col.bulk_write([op for op, _, _ in batch], ordered=False)
            matched = result.matched_count
            failed: dict[int, Exception] = {}
        except BulkWriteError as exc:
            matched = exc.details.get("nMatched", 0)
            failed = {
                e["index"]: BulkWriteError({"writeErrors": [e]}) for e in exc.details["writeErrors"]
            }
        except BaseException as exc:
            for _, _, done in batch:
                if isinstance(exc, Exception):
                    done.set_exception(exc)
                else:
                    done.cancel()
            raise
        if matched == len(batch) - len(failed):
            found = {rid for i, (_, rid, _) in enumerate(batch) if i not in failed}
        else:
            # Some did not match (a lease another replica took over): which ones? Each
            # asked for our lease, so the records that still carry it are the ones.
            mine = {"_id": {"$in": [rid for _, rid, _ in batch]}, "lease_owner": self._owner}
            found = {d["_id"] async for d in self._col.find(mine, {"_id": 1})}
        for i, (_, rid, done) in enumerate(batch):
            if i in failed:
                done.set_exception(failed[i])
            else:
                done.set_result(rid in found)
