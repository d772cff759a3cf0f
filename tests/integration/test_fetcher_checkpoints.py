"""An import's checkpoints on Dovecot: the cursor (and progress) written at most every
``fetcher_checkpoint_s`` while a folder imports, always at the end, never past what Kafka
acknowledged."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from pymongo import monitoring

from devservers.corpus import build
from schemas.topics import RAW_MESSAGES
from services.topic_reader import read_topic
from tests.fixtures.mongo_commands import SentCommands
from tests.fixtures.pipeline import Env, Pipeline, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CUSTOMER = ("Ingrid Bergström", "ingrid@bergstrom-logistik.se")
MESSAGES, BATCH = 200, 25


class _CursorWrites(SentCommands):
    """The ``last_uid`` of every write sent for one cursor, by any client created after
    it was registered: what the database is told, whoever tells it."""

    def __init__(self) -> None:
        self.cursor_id: str | None = None
        self.last_uids: list[int] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name != "update" or event.command["update"] != "folder_cursors":
            return
        for update in event.command.get("updates", []):
            if update["q"].get("_id") == self.cursor_id:
                self.last_uids.append(int(update["u"]["last_uid"]))


# Registered once: pymongo keeps a global listener for the process's life.
_WRITES = _CursorWrites()
monitoring.register(_WRITES)


async def _import(env: Env, pipeline: Pipeline, name: str, **settings: Any) -> list[int]:
    """The INBOX cursor's writes while the fetcher imports MESSAGES in batches of BATCH."""
    user = env.mail_user(name)
    account = env.account(user, account_id=f"{name}-{env.overrides['mongo_database']}")
    await env.publish_accounts(account)
    rng = random.Random(71)
    start = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    for i in range(MESSAGES):
        mail = build(rng, CUSTOMER, [("X", user.address)], date=start + dt.timedelta(hours=i))
        env.dovecot.deliver(user.address, mail.message)
    _WRITES.cursor_id, _WRITES.last_uids = f"{account.account_id}/INBOX", []
    raw_messages = env.settings.topic(RAW_MESSAGES)
    try:
        async with (
            env.mongo() as db,
            pipeline("fetcher", fetcher_batch_size=BATCH, **settings) as running,
        ):

            async def imported() -> bool:
                running.check()
                state = await db.account_states.find_one({"_id": account.account_id})
                return bool(state) and state["status"] == "idle"

            await eventually(imported, timeout=120, what="the import, then IDLE")
            records = await read_topic(env.overrides["kafka_bootstrap"], raw_messages)
            published = sum(1 for r in records if r.key == account.account_id.encode())
            cursor = await db.folder_cursors.find_one({"_id": _WRITES.cursor_id})
            state = await db.account_states.find_one({"_id": account.account_id})
    finally:
        _WRITES.cursor_id = None
    # Whatever the checkpoints, the pass ends with every message published, the cursor
    # and the progress at the end.
    assert published == MESSAGES
    assert cursor is not None and cursor["last_uid"] == MESSAGES
    assert cursor["uids"] == f"1:{MESSAGES}"
    (progress,) = state["folders"]
    assert (progress["done"], progress["total"]) == (MESSAGES, MESSAGES)
    return list(_WRITES.last_uids)


async def test_an_import_shorter_than_the_checkpoint_interval_writes_its_cursor_once(
    env: Env, pipeline: Pipeline
) -> None:
    """A checkpoint a batch was a durable write each 200 messages, about 5% of an
    import's rate (bench/RESULTS.md, "Issue #19, round 8"): an import that ends within the
    interval writes its cursor once, at its end."""
    writes = await _import(env, pipeline, "ckptonce", fetcher_checkpoint_s=60.0)
    assert writes[0] == MESSAGES, f"the first write was the end of the import: {writes}"


async def test_with_no_interval_the_cursor_follows_every_acknowledged_batch(
    env: Env, pipeline: Pipeline
) -> None:
    """``fetcher_checkpoint_s=0``: the cursor moves after every batch, in order, so a
    restart fetches again at most the batches in flight."""
    writes = await _import(env, pipeline, "ckptevery", fetcher_checkpoint_s=0.0)
    end = writes.index(MESSAGES)
    assert writes[: end + 1] == list(range(BATCH, MESSAGES + 1, BATCH))
