"""A large import on two IMAP connections: raw-messages in UID order all the same, a
crash in the middle resumed without loss or reordering, a refused second login carried
on with one connection, and one connection left once the account is idle."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from schemas.topics import RAW_MESSAGES
from services.topic_reader import read_topic
from tests.fixtures.pipeline import Env, Pipeline, eventually
from tests.integration.test_fetcher_folders import small

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

# Small batches, and a second connection from 100 messages left: many batches on each.
# A checkpoint every batch: the tests see an import midway by its cursor.
TWO = {
    "fetcher_batch_size": 25,
    "fetcher_second_connection_from": 100,
    "fetcher_checkpoint_s": 0.0,
}


def fill(env: Env, address: str, count: int) -> None:
    assert env.dovecot.deliver_many(address, (small(n, address) for n in range(count)))


def sessions(env: Env, address: str) -> int:
    """IMAP sessions Dovecot holds for ``address`` now."""
    lines = env.dovecot.doveadm("who", "-1", address).splitlines()[1:]
    return sum(1 for line in lines if line.split()[:2] == [address, "imap"])


def log_lines(env: Env, address: str, what: str) -> int:
    """Lines of Dovecot's log about ``address`` that say ``what``."""
    text = (env.dovecot.root / "dovecot.log").read_text(errors="replace")
    return sum(1 for line in text.splitlines() if f"user=<{address}>" in line and what in line)


async def raw_uids(env: Env) -> list[int]:
    """The UIDs on raw-messages in the order a consumer reads them (one account: one
    partition)."""
    raw = await read_topic(env.overrides["kafka_bootstrap"], env.settings.topic(RAW_MESSAGES))
    return [r.meta["location"]["uid"] for r in raw if r.meta]


async def imported_and_idle(db: Any, account_id: str, count: int) -> bool:
    """The INBOX cursor at UID ``count`` and the account idle, as the user sees it."""
    cur = await db.folder_cursors.find_one({"_id": f"{account_id}/INBOX"})
    state = await db.account_states.find_one({"_id": account_id})
    return bool(cur) and cur["last_uid"] == count and bool(state) and state["status"] == "idle"


async def test_an_import_on_two_connections_publishes_each_message_once_in_uid_order(
    env: Env, pipeline: Pipeline
) -> None:
    user = env.mail_user("twoconn")
    count = 1200
    fill(env, user.address, count)
    account = env.account(user, account_id=f"twoconn-{env.overrides['mongo_database']}")
    await env.publish_accounts(account)

    async with env.mongo() as db, pipeline("fetcher", **TWO) as running:

        async def idle_on_one_connection() -> bool:
            running.check()
            done = await imported_and_idle(db, account.account_id, count)
            return done and sessions(env, user.address) == 1

        await eventually(idle_on_one_connection, timeout=180, what="idle on one connection")

    assert await raw_uids(env) == list(range(1, count + 1))
    # The import logged in twice: the second connection took its share, then closed.
    assert log_lines(env, user.address, "Login: ") == 2


async def test_an_import_killed_midway_resumes_without_loss_or_reordering(
    env: Env, pipeline: Pipeline, tmp_path: Path
) -> None:
    user = env.mail_user("impkill")
    count = 3000
    fill(env, user.address, count)
    account = env.account(user, account_id=f"impkill-{env.overrides['mongo_database']}")
    await env.publish_accounts(account)
    # The same name for the killed replica and its successor: the account comes back at
    # once (static membership), not after the group's session timeout.
    settings = {k: str(v) for k, v in TWO.items()}
    environ = env.environ(data_dir=str(tmp_path / "data"), instance_id="imp-a", **settings)
    with (tmp_path / "fetcher.log").open("ab") as out:
        killed = subprocess.Popen(
            [sys.executable, "-m", "services", "fetcher"], env=environ, stdout=out, stderr=out
        )
    try:
        async with env.mongo() as db:

            async def midway_on_two() -> bool:
                if killed.poll() is not None:
                    tail = (tmp_path / "fetcher.log").read_text(errors="replace")[-3000:]
                    raise AssertionError(f"the fetcher exited ({killed.returncode}):\n{tail}")
                cur = await db.folder_cursors.find_one({"_id": f"{account.account_id}/INBOX"})
                return (
                    bool(cur)
                    and 0 < cur["last_uid"] < count // 2
                    and sessions(env, user.address) == 2
                )

            await eventually(midway_on_two, timeout=120, interval=0.02, what="two connections")
            killed.send_signal(signal.SIGKILL)  # no goodbye: nothing flushed, nothing saved
            killed.wait(10)
            cur = await db.folder_cursors.find_one({"_id": f"{account.account_id}/INBOX"})
            at_kill = cur["last_uid"]
            assert 0 < at_kill < count

            async with pipeline("fetcher", instance_id="imp-a", **TWO) as running:

                async def done() -> bool:
                    running.check()
                    cur = await db.folder_cursors.find_one({"_id": f"{account.account_id}/INBOX"})
                    return bool(cur) and cur["last_uid"] == count

                await eventually(done, timeout=180, what=f"the cursor at UID {count}")
                await asyncio.sleep(0)
    finally:
        if killed.poll() is None:
            killed.kill()
            killed.wait()

    uids = await raw_uids(env)
    # In UID order up to the kill, then again from after the saved cursor: what was
    # published and not yet saved comes twice (dedup's part), nothing is missing and
    # nothing is out of order.
    steps = [i for i in range(1, len(uids)) if uids[i] != uids[i - 1] + 1]
    assert len(steps) <= 1, f"more than one break in the UID order: {steps}"
    before, after = (uids[: steps[0]], uids[steps[0] :]) if steps else (uids, [])
    assert before == list(range(1, len(before) + 1))
    if after:
        assert after[0] <= at_kill + 1 <= before[-1] + 1  # resumed after the saved cursor
        assert after == list(range(after[0], count + 1))
    else:
        assert before == list(range(1, count + 1))


async def test_a_second_login_refused_leaves_the_import_on_one_connection(
    env: Env, pipeline: Pipeline
) -> None:
    user = env.mail_user("onlyone")
    count = 600
    fill(env, user.address, count)
    account = env.account(
        user,
        account_id=f"onlyone-{env.overrides['mongo_database']}",
        imap=env.limited_imap(user),
    )
    await env.publish_accounts(account)

    async with env.mongo() as db, pipeline("fetcher", **TWO) as running:

        async def imported() -> bool:
            running.check()
            return await imported_and_idle(db, account.account_id, count)

        await eventually(imported, timeout=180, what=f"the cursor at UID {count}, idle")

    assert await raw_uids(env) == list(range(1, count + 1))
    # The server did refuse the second login (and only that one: the account is idle).
    assert log_lines(env, user.address, "Maximum number of connections") >= 1
