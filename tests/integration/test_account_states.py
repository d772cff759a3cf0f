"""Account states are written in bursts (issue #16): what an account goes through within
a flush (error, connecting, syncing, idle after an IMAP server restart) is one write of
the latest, and every account's change of the burst goes in one bulk write."""

from __future__ import annotations

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
        # One bulk write for the twenty (SecantusDB counts it as one update command).
        assert await _updates(db) - before == 1

        docs = {d["_id"]: d async for d in db.account_states.find()}
        assert set(docs) == set(accounts)
        for doc in docs.values():
            assert (doc["status"], doc["reason"], doc["worker"]) == ("idle", None, "replica-1")
            assert doc["last_sync"] is not None and doc["folders"] == []

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
