"""Subject threads by key: the ``thread_keys`` collection.

One small document per subject key (``_id``, :func:`.threads.subject_key`) naming the
thread of the latest activity with that key (``thread_id``): what a message that names
no parent joins. Looking the batch's keys up in the activities themselves read every
activity of each key's conversations, and SecantusDB tests each against the whole
``$in`` list: one key with 5,000 activities cost 0.6 s of its CPU per batch. Here a
lookup is one point read per key, whatever the length of the thread.

An entry holds no date, so the usual write changes nothing: a message that joins its
key's thread keeps the entry right, whether it is the latest or not. After a batch's
activities are stored (as ``message_ids``), the keys whose entry, as the batch's lookup
read it, does not name the thread of the batch's latest activity of the key are
inserted in one ``insert_many``; only a key already stored whose batch brings another
thread (a reply naming a parent elsewhere, under the same subject and people) is
recomputed, from the activities of that key, which the batch's are among by then.
Erasure recomputes the keys of what it deleted (:meth:`ThreadKeys.recompute`). A replay
records again.

Two writers on one key at once (one recomputing it, or moving it to another thread
after the other's lookup) can leave the earlier answer until that key's next change; a
subject thread then names the conversation of the second-latest message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping

from pymongo import DeleteOne, ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from services.activity_writer.batch_threads import latest_threads
from services.common.mongo import Document, find_in, insert_new

COLLECTION = "thread_keys"
# Keys per ``$in`` when the activities of some keys are read (recompute, fill): the
# cost of one grows with its length times the activities it matches (SecantusDB).
ACTIVITY_SLICE = 50
# Entries inserted per write when filling the collection.
FILL_BATCH = 500

Row = tuple[str, dt.datetime, str]  # (thread key, date, thread id) of one activity


def to_recompute(wanted: Mapping[str, str], stored: Mapping[str, str]) -> set[str]:
    """Of keys whose insert was refused (stored already), those whose entry may be
    wrong now: the batch's latest activity of the key is in another thread than the
    entry names, or the entry is gone again (erased meanwhile). One in the same thread
    leaves the entry right: the latest activity is the stored one's or the batch's,
    both in that thread."""
    return {key for key, thread in wanted.items() if stored.get(key) != thread}


class ThreadKeys:
    def __init__(self, db: AsyncDatabase[Document]):
        self._col = db[COLLECTION]

    async def threads(self, keys: Collection[str]) -> dict[str, str]:
        """Thread key -> thread id of the latest stored activity with that key."""
        return {doc["_id"]: doc["thread_id"] async for doc in find_in(self._col, "_id", keys)}

    async def record(
        self,
        rows: Iterable[Row],
        activities: AsyncCollection[Document],
        known: Mapping[str, str],
    ) -> None:
        """Record the keys of stored activities, as rows; ``activities`` is read only for
        a key whose entry names another thread than the rows' latest. ``known``: entries
        as read before the activities were written; a key whose latest row is in the
        thread it names is left alone (an insert refused costs SecantusDB more than the
        whole lookup: 0.34 s of its CPU for the benchmark's 2,000 messages)."""
        wanted = {k: t for k, t in latest_threads(rows).items() if known.get(k) != t}
        if not wanted:
            return
        keys = sorted(wanted)
        refused = await insert_new(self._col, [{"_id": k, "thread_id": wanted[k]} for k in keys])
        if refused:
            stored = await self.threads([keys[i] for i in refused])
            await self.recompute(
                to_recompute({keys[i]: wanted[keys[i]] for i in refused}, stored), activities
            )

    async def recompute(self, keys: Collection[str], activities: AsyncCollection[Document]) -> None:
        """Set the entries of ``keys`` from the stored activities: the latest one's
        thread, or no entry when none has the key any more."""
        if not keys:
            return
        found = latest_threads(
            [
                (doc["thread_key"], doc["date"], doc["thread_id"])
                async for doc in find_in(
                    activities,
                    "thread_key",
                    keys,
                    {"thread_key": 1, "thread_id": 1, "date": 1},
                    size=ACTIVITY_SLICE,
                )
            ]
        )
        await self._col.bulk_write(
            [
                ReplaceOne({"_id": k}, {"_id": k, "thread_id": found[k]}, upsert=True)
                if k in found
                else DeleteOne({"_id": k})
                for k in sorted(keys)
            ],
            ordered=False,
        )

    async def fill(self, activities: AsyncCollection[Document]) -> int:
        """Entries for every key of the stored activities (for activities written before
        ``thread_keys`` existed); return how many keys. Inserts only: an entry a writer
        recorded meanwhile stays. One pass, keeping the latest per key (as
        :func:`.batch_threads.latest_threads`)."""
        found: dict[str, tuple[dt.datetime, str]] = {}
        async for doc in activities.find({}, {"thread_key": 1, "thread_id": 1, "date": 1}):
            key, date = doc.get("thread_key"), doc.get("date")
            if key and date is not None and (key not in found or date >= found[key][0]):
                found[key] = (date, doc["thread_id"])
        keys = sorted(found)
        for i in range(0, len(keys), FILL_BATCH):
            part = keys[i : i + FILL_BATCH]
            await insert_new(self._col, [{"_id": k, "thread_id": found[k][1]} for k in part])
        return len(keys)
