"""One connection watches every synced folder where the server offers NOTIFY (RFC 5465,
issue #16): an idle account holds one IMAP session, and mail in its Sent folder becomes
an activity without waiting for a poll."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from typing import Any

import pytest

from devservers.corpus import build
from tests.fixtures.pipeline import Env, Pipeline, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

CUSTOMER = ("Jana Nováková", "jana@zakaznik.example")
POLL_S = 300.0  # no poll in this test's time: what arrives was pushed


def sessions(env: Env, address: str) -> int:
    """The user's IMAP sessions, as Dovecot counts them (``doveadm who``)."""
    out = env.dovecot.doveadm("who", "-1", address)
    return sum(1 for line in out.splitlines()[1:] if line.strip())


async def test_an_idle_account_holds_one_session_and_sent_mail_is_pushed(
    env: Env, pipeline: Pipeline
) -> None:
    user = env.mail_user("notify")
    env.dovecot.create_folder(user.address, "Sent")
    rng = random.Random(5465)
    old = build(rng, CUSTOMER, [("P", user.address)], date=dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    env.dovecot.save(user.address, "Sent", old.message)  # a first import of Sent
    account = env.account(user, folders=("INBOX", "Sent"), sent_folder="Sent")
    await env.publish_accounts(account)

    async with (
        env.mongo() as db,
        pipeline(fetcher_poll_interval_s=POLL_S, fetcher_notify_recheck_s=POLL_S) as running,
    ):

        async def activity(message_id: str) -> dict[str, Any] | None:
            running.check()
            doc: dict[str, Any] | None = await db.activities.find_one({"message_id": message_id})
            return doc

        async def idle() -> bool:
            state = await db.account_states.find_one({"_id": account.account_id})
            return state is not None and state["status"] == "idle"

        await eventually(lambda: activity(old.message_id), timeout=90, what="the import")
        await eventually(idle, timeout=30, what="idle")
        # The import's second connection is closed: one session watches both folders.
        await asyncio.sleep(1.0)
        assert sessions(env, user.address) == 1

        now = dt.datetime.now(dt.UTC)
        sent = build(rng, CUSTOMER, [("P", user.address)], date=now)
        env.dovecot.save(user.address, "Sent", sent.message)
        doc = await eventually(lambda: activity(sent.message_id), timeout=30, what="pushed Sent")
        assert doc["sightings"][0]["folder"] == "Sent"

        received = build(rng, CUSTOMER, [("P", user.address)], date=now)
        env.dovecot.deliver(user.address, received.message)
        await eventually(lambda: activity(received.message_id), timeout=30, what="INBOX")
        assert sessions(env, user.address) == 1
