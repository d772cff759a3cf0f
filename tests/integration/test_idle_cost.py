"""Idle accounts cost the database nothing per account (issue #16).

An idle account is polled every ``fetcher_poll_interval_s`` (2 s here): its cursors,
whether a reconcile was asked for, whether processed mail waits, and its "idle" state
were one query or write each, per account per poll. Now the replica reads and writes
those for all its accounts at once, and a state is written when it changes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from schemas.mailbox_state import AccountStatus
from services.api.account_states import live_states
from tests.fixtures.pipeline import Env, Pipeline, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

ACCOUNTS = 8
POLLS = 4  # poll intervals measured


def _ops(status: dict[str, Any]) -> int:
    counters = status["opcounters"]
    return sum(int(counters[k]) for k in ("query", "update", "insert", "delete", "getmore"))


async def test_idle_accounts_cost_the_database_no_query_per_account(
    env: Env, pipeline: Pipeline
) -> None:
    users = [env.mail_user(f"idle{i}") for i in range(ACCOUNTS)]
    records = [env.account(u) for u in users]
    await env.publish_accounts(*records)
    ids = [r.account_id for r in records]
    async with env.mongo() as db, pipeline("fetcher"):
        states = db["account_states"]

        async def all_idle() -> list[dict[str, Any]] | None:
            found = [d async for d in states.find({"_id": {"$in": ids}})]
            return (
                found
                if len(found) == ACCOUNTS and all(d["status"] == "idle" for d in found)
                else None
            )

        first = await eventually(all_idle, timeout=120, what="every account idle")
        began = {d["_id"]: d["since"] for d in first}
        await asyncio.sleep(2.0)  # past the first polls after the import

        admin = db.client.admin
        before = _ops(await admin.command("serverStatus"))
        interval = env.overrides["fetcher_poll_interval_s"]
        await asyncio.sleep(POLLS * interval)
        after = _ops(await admin.command("serverStatus"))
        per_poll = (after - before) / POLLS

        # Before: three operations per account per poll (24 a poll here). Now the
        # replica's own few (its heartbeat, the reads of pending housekeeping), however
        # many accounts it runs.
        assert per_poll <= 5, f"{per_poll:.1f} database operations per poll"

        # What the user sees stays true (the states as the API and the CLI read them):
        # still idle, idle since it became idle, synced at the latest poll, owned by a
        # live replica.
        now = dt.datetime.now(dt.UTC)
        shown = await live_states(db, ids)
        assert sorted(shown) == sorted(ids)
        for state in shown.values():
            assert state.status is AccountStatus.IDLE
            assert state.since == began[state.id]
            assert state.last_sync is not None and state.heartbeat_at is not None
            assert now - state.last_sync < dt.timedelta(seconds=3 * interval)
            assert now - state.heartbeat_at < dt.timedelta(seconds=3 * interval)
