"""Account states in MongoDB, for the API, the status page and the metrics."""

from __future__ import annotations

import datetime as dt

from pymongo.asynchronous.database import AsyncDatabase

from schemas.mailbox_state import (
    AccountStatus,
    FolderProgress,
    ReconcileReport,
    UidValidityChange,
)
from services.common import metrics
from services.common.mongo import Document

KEPT_CHANGES = 20


class StateStore:
    """Account states, each owned by the replica that runs the account: every write and
    every :meth:`heartbeat` stamps ``worker`` and ``heartbeat_at``, so a state nobody
    refreshes any more (the process stopped, or the account is on no replica) reads as
    ``not_running`` in the API (:mod:`services.api.liveness`), never as its last status.
    """

    def __init__(self, db: AsyncDatabase[Document], worker: str, stale_after_s: float = 90.0):
        self._col = db["account_states"]
        self._worker = worker
        self._stale_after_s = stale_after_s

    async def set(
        self,
        account_id: str,
        status: AccountStatus,
        reason: str | None = None,
        *,
        synced: bool = False,
    ) -> None:
        now = dt.datetime.now(dt.UTC)
        update: Document = {
            "schema_version": 1,
            "status": status.value,
            "reason": reason,
            "since": now,
            "worker": self._worker,
            "heartbeat_at": now,
            "stale_after_s": self._stale_after_s,
        }
        if synced:
            update["last_sync"] = now
        on_insert: Document = {"folders": []}
        if not synced:
            on_insert["last_sync"] = None
        await self._col.update_one(
            {"_id": account_id}, {"$set": update, "$setOnInsert": on_insert}, upsert=True
        )
        metrics.account_status(account_id, status.value)

    async def heartbeat(self, account_ids: list[str]) -> None:
        """This replica still runs these accounts."""
        if account_ids:
            now = dt.datetime.now(dt.UTC)
            await self._col.update_many(
                {"_id": {"$in": account_ids}},
                {
                    "$set": {
                        "worker": self._worker,
                        "heartbeat_at": now,
                        "stale_after_s": self._stale_after_s,
                    }
                },
            )

    async def released(self, account_ids: list[str]) -> None:
        """This replica stopped running these accounts: not running until another takes
        them (only where no other replica has taken them already)."""
        if account_ids:
            await self._col.update_many(
                {"_id": {"$in": account_ids}, "worker": self._worker},
                {"$set": {"heartbeat_at": None}},
            )

    async def progress(self, account_id: str, progress: FolderProgress) -> None:
        """Record one folder's progress (n/total, or its error) on the account's state."""
        col = self._col
        if progress.error is not None:
            # The state's one writer is this replica: reading before writing is safe.
            stored = await col.find_one({"_id": account_id}, {"folders": 1})
            previous = next(
                (
                    FolderProgress.model_validate(f)
                    for f in (stored or {}).get("folders", [])
                    if f["folder"] == progress.folder
                ),
                None,
            )
            progress = with_error_since(previous, progress, dt.datetime.now(dt.UTC))
        doc = progress.model_dump()
        result = await col.update_one(
            {"_id": account_id, "folders.folder": progress.folder}, {"$set": {"folders.$": doc}}
        )
        if result.matched_count == 0:
            await col.update_one({"_id": account_id}, {"$push": {"folders": doc}})

    async def uidvalidity_changed(self, account_id: str, change: UidValidityChange) -> None:
        """Record a UIDVALIDITY change and its verdict; the latest 20 are kept."""
        doc = change.model_dump()
        await self._col.update_one(
            {"_id": account_id},
            {"$push": {"uidvalidity_changes": {"$each": [doc], "$slice": -KEPT_CHANGES}}},
        )

    async def reconciled(self, account_id: str, report: ReconcileReport) -> None:
        await self._col.update_one(
            {"_id": account_id}, {"$set": {"last_reconcile": report.model_dump()}}
        )


def with_error_since(
    previous: FolderProgress | None, progress: FolderProgress, now: dt.datetime
) -> FolderProgress:
    """``progress`` stamped with when its error began: the stored time while the same
    error repeats (a folder is retried every pass), ``now`` for a new or other error."""
    if progress.error is None:
        return progress.model_copy(update={"error_since": None})
    if previous is not None and previous.error == progress.error and previous.error_since:
        return progress.model_copy(update={"error_since": previous.error_since})
    return progress.model_copy(update={"error_since": now})
