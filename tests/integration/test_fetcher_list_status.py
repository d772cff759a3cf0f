"""Without NOTIFY, one connection still watches every synced folder where the server
offers LIST-STATUS (RFC 5819, issue #16): IDLE on INBOX, and each poll one LIST-STATUS
for all the folders. Without either, two connections, as before."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from typing import Any

import pytest

from devservers.corpus import build
from schemas.account import AccountRecord
from tests.fixtures.pipeline import Env, Pipeline, Running, eventually
from tests.integration.test_fetcher_notify import sessions

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

CUSTOMER = ("Jana Nováková", "jana@zakaznik.example")
POLL_S = 4.0


async def _watched(
    env: Env, running: Running, db: Any, account: AccountRecord, old: str, *, held: int
) -> None:
    """The account imports Sent, goes idle holding ``held`` sessions, and mail filed in
    Sent (polled) or delivered to INBOX becomes an activity within a poll or so."""
    address = account.address
    rng = random.Random(5819)

    async def activity(message_id: str) -> dict[str, Any] | None:
        running.check()
        doc: dict[str, Any] | None = await db.activities.find_one({"message_id": message_id})
        return doc

    await eventually(lambda: activity(old), timeout=90, what="the import")
    await eventually(lambda: idle(db, account), timeout=30, what="idle")
    await asyncio.sleep(1.0)  # the import's second connection, if any, is closed
    assert sessions(env, address) == held

    now = dt.datetime.now(dt.UTC)
    sent = build(rng, CUSTOMER, [("P", address)], date=now)
    env.dovecot.save(address, "Sent", sent.message)
    doc = await eventually(
        lambda: activity(sent.message_id), timeout=POLL_S + 10, what="polled Sent"
    )
    assert doc["sightings"][0]["folder"] == "Sent"

    received = build(rng, CUSTOMER, [("P", address)], date=now)
    env.dovecot.deliver(address, received.message)
    await eventually(lambda: activity(received.message_id), timeout=POLL_S + 10, what="INBOX")
    assert sessions(env, address) == held


async def idle(db: Any, account: AccountRecord) -> bool:
    state = await db.account_states.find_one({"_id": account.account_id})
    return state is not None and state["status"] == "idle"


def _mailbox(env: Env, address: str) -> str:
    """Sent (with one old message, a first import: its Message-ID) and Archive, besides
    INBOX."""
    env.dovecot.create_folder(address, "Sent")
    env.dovecot.create_folder(address, "Archive")
    rng = random.Random(address)
    old = build(rng, CUSTOMER, [("P", address)], date=dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    env.dovecot.save(address, "Sent", old.message)
    return old.message_id


async def test_without_notify_an_idle_account_holds_one_session_with_list_status(
    env: Env, pipeline: Pipeline
) -> None:
    user = env.mail_user("liststatus")
    old = _mailbox(env, user.address)
    account = env.account(user, folders=("INBOX", "Sent", "Archive"), sent_folder="Sent")
    await env.publish_accounts(account)
    async with (
        env.mongo() as db,
        pipeline(fetcher_notify=False, fetcher_poll_interval_s=POLL_S) as running,
    ):
        await _watched(env, running, db, account, old, held=1)


async def test_a_folder_gone_from_the_list_status_answer_reports_its_error(
    env: Env, pipeline: Pipeline
) -> None:
    user = env.mail_user("lsgone")
    _mailbox(env, user.address)
    env.dovecot.create_folder(user.address, "Projects")
    account = env.account(user, folders=("INBOX", "Sent", "Archive", "Projects"))
    await env.publish_accounts(account)
    async with (
        env.mongo() as db,
        pipeline(fetcher_notify=False, fetcher_poll_interval_s=POLL_S) as running,
    ):

        async def folder(name: str) -> dict[str, Any]:
            running.check()
            state = await db.account_states.find_one({"_id": account.account_id})
            return next((f for f in (state or {}).get("folders", []) if f["folder"] == name), {})

        await eventually(lambda: idle(db, account), timeout=90, what="the import")
        env.dovecot.doveadm("mailbox", "delete", "-u", user.address, "Projects")

        async def failed() -> bool:
            return (await folder("Projects")).get("error") is not None

        # Not in LIST-STATUS's answer: its own STATUS fails, and says so.
        await eventually(failed, timeout=POLL_S + 10, what="the deleted folder's error")
        assert "STATUS" in (await folder("Projects"))["error"]


async def test_without_notify_or_list_status_two_sessions_watch_as_before(
    env: Env, pipeline: Pipeline
) -> None:
    user = env.mail_user("lean")
    old = _mailbox(env, user.address)
    # Dovecot's second listener announces neither NOTIFY nor LIST-STATUS.
    account = env.account(
        user, imap=env.lean_imap(user), folders=("INBOX", "Sent", "Archive"), sent_folder="Sent"
    )
    await env.publish_accounts(account)
    async with env.mongo() as db, pipeline(fetcher_poll_interval_s=POLL_S) as running:
        await _watched(env, running, db, account, old, held=2)
