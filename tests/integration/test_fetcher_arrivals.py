"""Mail that arrives while the fetcher is syncing INBOX is not left for the next poll.

IDLE (RFC 2177) reports what changes after it starts; the EXAMINE before it reports
what came since the last pass (an ``EXISTS`` the fetcher must read itself). A message
delivered after a pass listed INBOX's new UIDs and before the next IDLE is in neither
the pass nor any IDLE response: before, it waited for the next poll, NOTIFY recheck or
IDLE renewal (minutes). Here the second message is delivered exactly then, in every
connection mode, with every poll set far beyond the test's time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from typing import Any

import pytest

from devservers.corpus import build
from services.fetcher.new_mail import Fetched, NewMail
from tests.fixtures.pipeline import Env, Pipeline, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

CUSTOMER = ("Jana Nováková", "jana@zakaznik.example")
LONG_S = 300.0  # no poll, recheck or IDLE renewal within the test


@pytest.mark.parametrize("mode", ["notify", "list-status", "two-connections"])
async def test_mail_arriving_during_a_pass_is_not_left_for_the_next_poll(
    env: Env, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    user = env.mail_user(f"arrive{mode[:3]}")
    env.dovecot.create_folder(user.address, "Sent")
    imap: dict[str, Any] = {}
    if mode == "two-connections":
        imap["imap"] = env.lean_imap(user)  # neither NOTIFY nor LIST-STATUS
    account = env.account(user, folders=("INBOX", "Sent"), sent_folder="Sent", **imap)
    await env.publish_accounts(account)
    rng = random.Random(2177)
    now = dt.datetime.now(dt.UTC)
    first, second = (build(rng, CUSTOMER, [("P", user.address)], date=now) for _ in range(2))

    fetch = NewMail.fetch
    delivered = asyncio.Event()

    async def fetch_then_deliver(self: NewMail, imap: Any, folder: Any, *args: Any) -> Fetched:
        out = await fetch(self, imap, folder, *args)
        if out.published and folder.name == "INBOX" and not delivered.is_set():
            # The pass has listed and fetched INBOX's new mail: the second arrives now.
            await asyncio.to_thread(env.dovecot.deliver, user.address, second.message)
            delivered.set()
        return out

    monkeypatch.setattr(NewMail, "fetch", fetch_then_deliver)
    settings = {
        "fetcher_poll_interval_s": LONG_S,
        "fetcher_notify_recheck_s": LONG_S,
        "fetcher_idle_renew_s": LONG_S,
        "fetcher_notify": mode == "notify",
    }
    async with env.mongo() as db, pipeline(**settings) as running:

        async def activity(message_id: str) -> dict[str, Any] | None:
            running.check()
            doc: dict[str, Any] | None = await db.activities.find_one({"message_id": message_id})
            return doc

        async def idle() -> bool:
            running.check()
            state = await db.account_states.find_one({"_id": account.account_id})
            return state is not None and state["status"] == "idle"

        await eventually(idle, timeout=90, what="idle")
        env.dovecot.deliver(user.address, first.message)
        await eventually(lambda: activity(first.message_id), timeout=30, what="the first")
        await asyncio.wait_for(delivered.wait(), 10)
        await eventually(
            lambda: activity(second.message_id), timeout=20, what="the one delivered mid-pass"
        )
