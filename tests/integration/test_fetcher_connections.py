"""The per-account connection cap, counted by Dovecot itself (``doveadm who``)."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from functools import partial

import pytest

from devservers.corpus import build
from tests.fixtures.pipeline import Env, Pipeline, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CUSTOMER = ("Karel Čapek", "karel@rur.cz")


def connections(env: Env, address: str) -> int:
    """IMAP connections Dovecot holds for this user now."""
    lines = env.dovecot.doveadm("who", "-1", address).splitlines()[1:]
    return sum(1 for line in lines if line.split()[:2] == [address, "imap"])


def deliver(env: Env, address: str, rng: random.Random, day: int, folder: str = "") -> str:
    mail = build(rng, CUSTOMER, [("Me", address)], date=dt.datetime(2026, 6, day, tzinfo=dt.UTC))
    if folder:
        env.dovecot.save(address, folder, mail.message)
    else:
        env.dovecot.deliver(address, mail.message)
    return mail.message_id


async def test_connections_never_exceed_the_cap_and_idle_keeps_its_own(
    env: Env, pipeline: Pipeline
) -> None:
    suffix = env.overrides["mongo_database"]
    one, two = env.mail_user("cap1"), env.mail_user("cap2")
    folders = ("INBOX", "Archive")
    capped = env.account(one, account_id=f"cap1-{suffix}", folders=folders, max_connections=1)
    # The second account's server has neither NOTIFY nor LIST-STATUS (Dovecot's lean
    # listener): with two connections allowed, INBOX gets one of its own.
    lean = env.lean_imap(two)
    default = env.account(two, account_id=f"cap2-{suffix}", imap=lean, folders=folders)
    await env.publish_accounts(capped, default)
    rng = random.Random(41)
    for user in (one, two):
        deliver(env, user.address, rng, 1)
        deliver(env, user.address, rng, 2, folder="Archive")

    # Polling every 10 minutes: only IDLE on INBOX can bring new mail in time. NOTIFY
    # off plays a server without it (RFC 5465; with it one connection watches all
    # folders: test_fetcher_notify.py; with LIST-STATUS, RFC 5819, one connection
    # IDLEs between polls: test_fetcher_list_status.py).
    watching = {"fetcher_poll_interval_s": 600.0, "fetcher_notify": False}
    async with env.mongo() as db, pipeline(**watching) as running:

        async def idle(account_id: str, n: int) -> bool:
            running.check()
            state = await db.account_states.find_one({"_id": account_id})
            count = await db.activities.count_documents({"account_ids": account_id})
            return bool(state) and state["status"] == "idle" and count == n

        for account in (capped, default):
            await eventually(partial(idle, account.account_id, 2), timeout=90, what="sync")
        seen: dict[str, set[int]] = {one.address: set(), two.address: set()}
        for _ in range(10):  # sampled over a few seconds, while IDLE is renewed
            for address, counts in seen.items():
                counts.add(connections(env, address))
            await asyncio.sleep(0.3)
        assert seen == {one.address: {1}, two.address: {2}}

        # New mail reaches both through IDLE; the capped one IDLEs between polls.
        for account, user in ((capped, one), (default, two)):
            mid = deliver(env, user.address, rng, 3)

            async def arrived(m: str = mid) -> bool:
                running.check()
                return bool(await db.activities.find_one({"message_id": m}))

            await eventually(arrived, timeout=30, what=f"IDLE pickup for {account.account_id}")
        assert connections(env, one.address) == 1 and connections(env, two.address) == 2
