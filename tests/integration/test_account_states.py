"""Account states are written in bursts (issue #16): what an account goes through within
a flush (error, connecting, syncing, idle after an IMAP server restart) is one write of
the latest, and the accounts of the burst that got the same change go in one update."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from schemas.mailbox_state import AccountStatus
from services.fetcher.state import StateStore
from tests.fixtures.pipeline import Env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def _updates(db: Any) -> int:
    return int((await db.client.admin.command("serverStatus"))["opcounters"]["update"])


async def test_a_burst_of_changes_is_one_write_of_the_latest(env: Env) -> None:
    async with env.mongo() as db:
        states = StateStore(db, "replica-1")
        accounts = [f"acc{i}" for i in range(20)]
        before = await _updates(db)
        for account in accounts:
            await states.set(account, AccountStatus.ERROR, "connection lost (retrying)")
            await states.set(account, AccountStatus.CONNECTING)
            await states.set(account, AccountStatus.SYNCING)
            await states.set(account, AccountStatus.IDLE, synced=True)
            await states.set(account, AccountStatus.IDLE, synced=True)  # unchanged: nothing
        assert await db.account_states.count_documents({}) == 0  # not written yet
        await states.flush()
        # The first ever: an update that finds none of them, then one bulk of upserts.
        assert await _updates(db) - before == 2

        docs = {d["_id"]: d async for d in db.account_states.find()}
        assert set(docs) == set(accounts)
        for doc in docs.values():
            assert (doc["status"], doc["reason"], doc["worker"]) == ("idle", None, "replica-1")
            assert doc["last_sync"] is not None and doc["folders"] == []

        # They move again (a server restart): one update for the twenty, two for two
        # different changes; what was not set keeps its value.
        before = await _updates(db)
        for account in accounts:
            await states.set(account, AccountStatus.ERROR, "connection lost (retrying)")
            await states.set(account, AccountStatus.CONNECTING)
        await states.flush()
        assert await _updates(db) - before == 1
        before = await _updates(db)
        for account in accounts[:10]:
            await states.set(account, AccountStatus.IDLE, synced=True)
        for account in accounts[10:]:
            await states.set(account, AccountStatus.AUTH_FAILED, "wrong password")
        await states.flush()
        assert await _updates(db) - before == 2
        moved = {d["_id"]: d async for d in db.account_states.find()}
        assert {moved[a]["status"] for a in accounts[:10]} == {"idle"}
        assert {(moved[a]["status"], moved[a]["reason"]) for a in accounts[10:]} == {
            ("auth_failed", "wrong password")
        }
        assert all(moved[a]["last_sync"] > docs[a]["last_sync"] for a in accounts[:10])
        assert all(moved[a]["last_sync"] == docs[a]["last_sync"] for a in accounts[10:])
        docs = moved

        # An error after a sync not yet written keeps the sync's time.
        await states.set("acc0", AccountStatus.SYNCING)
        await states.set("acc0", AccountStatus.IDLE, synced=True)
        await states.set("acc0", AccountStatus.ERROR, "server said BYE (retrying)")
        await states.flush()
        doc = await db.account_states.find_one({"_id": "acc0"})
        assert doc is not None and doc["status"] == "error"
        assert doc["last_sync"] > docs["acc0"]["last_sync"]

        # Released before written: never written (the next owner's state stands).
        await states.set("acc1", AccountStatus.SYNCING)
        await states.released(["acc1"])
        await states.flush()
        doc = await db.account_states.find_one({"_id": "acc1"})
        assert doc is not None and doc["status"] == "idle" and doc["heartbeat_at"] is None
        assert doc["worker"] is None


async def test_a_status_passed_through_is_written_only_once_it_lasts(env: Env) -> None:
    """Connecting and syncing wait ``settle_s`` (a moved account is idle a second
    later: one write instead of three); idle and errors go at the next flush."""
    async with env.mongo() as db:
        states = StateStore(db, "replica-2", flush_s=0.05, settle_s=1.0)
        stop = asyncio.Event()
        flusher = asyncio.create_task(states.run(stop))
        try:
            await states.set("quick", AccountStatus.CONNECTING)
            await states.set("slow", AccountStatus.CONNECTING)
            await states.set("failed", AccountStatus.ERROR, "connection refused (retrying)")
            await asyncio.sleep(0.3)
            await states.set("quick", AccountStatus.SYNCING)
            await states.set("quick", AccountStatus.IDLE, synced=True)
            await asyncio.sleep(0.3)
            written = {d["_id"]: d["status"] async for d in db.account_states.find()}
            assert written == {"failed": "error", "quick": "idle"}
            await asyncio.sleep(1.0)  # slow has been connecting for more than settle_s
            written = {d["_id"]: d["status"] async for d in db.account_states.find()}
            assert written == {"failed": "error", "quick": "idle", "slow": "connecting"}
        finally:
            stop.set()
            await flusher
