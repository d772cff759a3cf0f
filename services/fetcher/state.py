"""Account states in MongoDB, for the API, the status page and the metrics."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from dataclasses import dataclass

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from schemas.mailbox_state import (
    AccountStatus,
    FolderProgress,
    ReconcileReport,
    UidValidityChange,
    WorkerHeartbeat,
)
from services.common import metrics
from services.common.mongo import Document

KEPT_CHANGES = 20
# Accounts per ``update_many``: SecantusDB matches every document it updates against the
# whole ``$in`` list, so its CPU per document grows with the slice (measured at 10,000
# states: 0.34 ms a document in slices of 25, 0.36 of 50, 0.44-0.48 of 100), and each
# statement is a commit of its own (0.35-0.39 in slices of 10).
STATES_PER_WRITE = 25

log = logging.getLogger("mailsync.fetcher.state")


# The statuses an account passes through on its way to idle (or to an error): the next
# one usually follows within a second, so each is written only once it has lasted
# SETTLE_S (see StateStore).
PASSING = frozenset({AccountStatus.CONNECTING, AccountStatus.SYNCING})
SETTLE_S = 2.0


def due(status: AccountStatus, unwritten_since: float, now: float, settle_s: float) -> bool:
    """Whether a flush writes an account's pending ``status`` now: at once unless it is
    one the account passes through, and that once the account has had something
    unwritten for ``settle_s`` (the state is never more than that behind)."""
    return status not in PASSING or now - unwritten_since >= settle_s


@dataclass(frozen=True)
class _Change:
    """An account's status set and not yet written; ``synced``: it synced meanwhile."""

    status: AccountStatus
    reason: str | None
    synced: bool


class StateStore:
    """Account states, each owned by the replica that runs the account: every write and
    every :meth:`heartbeat` stamps ``worker`` and ``heartbeat_at``, so a state nobody
    refreshes any more (the process stopped, or the account is on no replica) reads as
    ``not_running`` in the API (:mod:`services.api.liveness`), never as its last status.

    A status is written when it changes, not on every poll (issue #16: at 1,000 idle
    accounts the database spent most of its time rewriting "idle"), so ``since`` is
    when the status began. What an unchanged status still has to say is said for the
    whole replica at once by :meth:`heartbeat`, one document in ``fetcher_workers``
    (:class:`~schemas.mailbox_state.WorkerHeartbeat`): every state naming this replica
    is alive, and those idle are watched (readers take it as their ``heartbeat_at`` and
    ``last_sync``: :func:`services.api.account_states.live_states`).

    Changes are written by :meth:`run` every ``flush_s``, the latest per account: when
    an IMAP server restarts, each account goes error, connecting, syncing and idle
    within a second or two, and its thousands of accounts were four writes each (the
    database's busiest moment in bench/scale.py). The accounts that got the same change
    go in one ``update_many`` (per ``STATES_PER_WRITE``): SecantusDB commits (and syncs) each
    statement of a bulk write on its own, most of its work when thousands of accounts
    move between replicas (py-spy in bench/scale.py), and a multi-document update in one
    commit per thousand documents. So ``since``, ``heartbeat_at`` and ``last_sync`` are
    the flush's time, at most ``flush_s`` after the change. A database away keeps the
    changes for the next flush; other writes of a state flush first.

    ``connecting`` and ``syncing`` (:data:`PASSING`) wait for ``settle_s`` before a
    flush writes them (:func:`due`; :meth:`flush` writes everything): an account a
    rebalance moves here goes connecting, syncing and idle in a second or so, and its
    state was up to three writes, each about 0.5 ms of SecantusDB's CPU per account
    (bench/scale.py, issue #16's 30 s); now one, idle, for most. An import, or a login
    that hangs, still shows as syncing or connecting, ``settle_s`` late. While it waits
    for its login slot (:mod:`.login_pacer`) an account is connecting in the metrics only
    (:meth:`waiting`): thousands wait seconds in a rebalance.
    """

    def __init__(
        self,
        db: AsyncDatabase[Document],
        worker: str,
        stale_after_s: float = 90.0,
        *,
        flush_s: float = 0.5,
        settle_s: float = SETTLE_S,
    ):
        self._col = db["account_states"]
        self._workers = db["fetcher_workers"]
        self._worker = worker
        self._stale_after_s = stale_after_s
        self._flush_s = flush_s
        self._settle_s = settle_s
        # What this process last set per account: (status, reason).
        self._written: dict[str, tuple[AccountStatus, str | None]] = {}
        # Set and not yet written, per account, and since when (loop time) it has had
        # something unwritten.
        self._pending: dict[str, _Change] = {}
        self._unwritten_since: dict[str, float] = {}
        self._changed = asyncio.Event()
        # A flush in flight must land before a release: written after it, it would name
        # this replica again on a state another replica now holds.
        self._writing = asyncio.Lock()
        self._releasing: set[asyncio.Task[None]] = set()  # releases being written

    async def set(
        self,
        account_id: str,
        status: AccountStatus,
        reason: str | None = None,
        *,
        synced: bool = False,
    ) -> None:
        metrics.account_status(account_id, status.value)
        if self._written.get(account_id) == (status, reason):
            return  # unchanged: the heartbeat keeps it alive (and its last_sync)
        earlier = self._pending.get(account_id)
        # A sync not yet written stays one: an error right after it keeps its last_sync.
        synced = synced or (earlier is not None and earlier.synced)
        self._pending[account_id] = _Change(status, reason, synced)
        self._unwritten_since.setdefault(account_id, asyncio.get_running_loop().time())
        self._written[account_id] = (status, reason)
        self._changed.set()

    def waiting(self, account_id: str) -> None:
        """The account waits to connect (its login slot): connecting in the metrics, and
        in the database once it connects (:meth:`set`)."""
        metrics.account_status(account_id, AccountStatus.CONNECTING.value)

    async def run(self, stop: asyncio.Event) -> None:
        """Write what was set, every ``flush_s`` while something was, until ``stop``.

        Returns as soon as ``stop`` is set (the service's cleanup flushes what is left):
        a replica shutting down stops its accounts only once every loop returned, and
        its accounts move to another replica only after that (issue #16)."""
        while not stop.is_set():
            changed = asyncio.ensure_future(self._changed.wait())
            stopping = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait(
                    {changed, stopping}, timeout=1.0, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                changed.cancel()
                stopping.cancel()
            if stop.is_set():
                return
            with contextlib.suppress(TimeoutError):  # let a burst of changes gather
                await asyncio.wait_for(stop.wait(), self._flush_s)
            if stop.is_set():
                return
            try:
                async with self._writing:
                    await self._flush(everything=False)
            except PyMongoError as exc:  # kept: the next flush writes them
                log.warning("account states not stored (retrying): %s", exc)

    async def flush(self) -> None:
        """Write every state set and not yet written, in one bulk write."""
        async with self._writing:
            await self._flush()

    async def _flush(self, *, everything: bool = True) -> None:
        self._changed.clear()
        now = asyncio.get_running_loop().time()
        batch: dict[str, _Change] = {}
        held: dict[str, _Change] = {}
        for account_id, change in self._pending.items():
            since = self._unwritten_since[account_id]
            if everything or due(change.status, since, now, self._settle_s):
                batch[account_id] = change
            else:
                held[account_id] = change
        self._pending = held
        since_of = {a: self._unwritten_since.pop(a) for a in batch}
        if held:
            self._changed.set()  # looked at again at the next flush
        if not batch:
            return
        try:
            await self._write(batch)
        except BaseException:
            for account_id, change in batch.items():  # a newer one set meanwhile wins
                self._pending.setdefault(account_id, change)
                since = since_of[account_id]
                self._unwritten_since[account_id] = min(
                    self._unwritten_since.get(account_id, since), since
                )
            self._changed.set()
            raise

    async def _write(self, batch: dict[str, _Change]) -> None:
        """The accounts of each (status, reason, synced) in one ``update_many`` per
        ``STATES_PER_WRITE``; the few without a state yet (never run anywhere) inserted."""
        now = dt.datetime.now(dt.UTC)
        groups: dict[_Change, list[str]] = {}
        for account_id, change in batch.items():
            groups.setdefault(change, []).append(account_id)
        for change, account_ids in groups.items():
            update: Document = {
                "schema_version": 1,
                "status": change.status.value,
                "reason": change.reason,
                "since": now,
                "worker": self._worker,
                "heartbeat_at": now,
                "stale_after_s": self._stale_after_s,
            }
            if change.synced:
                update["last_sync"] = now
            for i in range(0, len(account_ids), STATES_PER_WRITE):
                ids = account_ids[i : i + STATES_PER_WRITE]
                result = await self._col.update_many({"_id": {"$in": ids}}, {"$set": update})
                if result.matched_count < len(ids):
                    await self._insert_missing(ids, update)

    async def _insert_missing(self, account_ids: list[str], update: Document) -> None:
        """States for the accounts of ``account_ids`` that have none (upserts: another
        write may have created one meanwhile)."""
        found = self._col.find({"_id": {"$in": account_ids}}, {"_id": 1})
        existing = {doc["_id"] async for doc in found}
        on_insert: Document = {"folders": []}
        if "last_sync" not in update:
            on_insert["last_sync"] = None
        ops = [
            UpdateOne({"_id": a}, {"$set": update, "$setOnInsert": on_insert}, upsert=True)
            for a in account_ids
            if a not in existing
        ]
        if ops:
            await self._col.bulk_write(ops, ordered=False)

    async def heartbeat(self) -> None:
        """This replica still runs its accounts: one write, however many it runs."""
        beat = WorkerHeartbeat(
            id=self._worker,
            heartbeat_at=dt.datetime.now(dt.UTC),
            stale_after_s=self._stale_after_s,
        )
        doc = beat.model_dump(by_alias=True)
        await self._workers.replace_one({"_id": self._worker}, doc, upsert=True)

    async def released(self, account_ids: list[str]) -> None:
        """This replica stopped running these accounts: not running until another takes
        them (only where no other replica has taken them already).

        Returns once nothing this replica wrote or will write can name it on them again
        (a flush in flight landed, what was pending dropped); the release itself is
        written after, in the background (:meth:`settle` waits for it). It is filtered on
        this replica's name, so the next owner's states written meanwhile stand; and it
        holds the write lock, so this replica's own later writes (the account back
        here) land after it. At N = 10,000 a rebalance releases about 5,000 states, a
        second or more of the database's work that kept the next owner waiting
        (bench/scale.py, issue #16)."""
        await self._writing.acquire()
        try:
            self._release(account_ids)
        except BaseException:
            self._writing.release()
            raise
        self._releasing.add(asyncio.create_task(self._clear(account_ids)))

    async def _clear(self, account_ids: list[str]) -> None:
        """Released states written (the caller holds the write lock: freed here)."""
        try:
            for i in range(0, len(account_ids), STATES_PER_WRITE):
                await self._col.update_many(
                    {"_id": {"$in": account_ids[i : i + STATES_PER_WRITE]}, "worker": self._worker},
                    # No worker: the replica's heartbeat no longer speaks for it.
                    {"$set": {"heartbeat_at": None, "worker": None}},
                )
        except PyMongoError as exc:  # the heartbeat stops anyway: stale soon after
            log.warning("released accounts not recorded: %s", exc)
        finally:
            self._writing.release()

    async def settle(self) -> None:
        """Wait until every release so far is written (or failed, logged)."""
        while self._releasing:
            await asyncio.wait(set(self._releasing))
            self._releasing = {t for t in self._releasing if not t.done()}

    def _release(self, account_ids: list[str]) -> None:
        self.forget(account_ids)
        for account_id in account_ids:  # not to be written after this
            self._pending.pop(account_id, None)
            self._unwritten_since.pop(account_id, None)

    def forget(self, account_ids: list[str]) -> None:
        """These accounts' tasks stopped: whatever they set next is written."""
        for account_id in account_ids:
            self._written.pop(account_id, None)

    async def progress(self, account_id: str, progress: FolderProgress) -> None:
        """Record one folder's progress (n/total, or its error) on the account's state."""
        await self.flush()  # the state exists before its folders are written into it
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
        await self.flush()
        await self._col.update_one(
            {"_id": account_id},
            {"$push": {"uidvalidity_changes": {"$each": [doc], "$slice": -KEPT_CHANGES}}},
        )

    async def reconciled(self, account_id: str, report: ReconcileReport) -> None:
        await self.flush()
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
