"""Faults of the broker and of ``mailsync run``, on a real Apache Kafka, counted in MongoDB.

- The broker killed (SIGKILL) in the middle of a sync and restarted from its data:
  every message is one activity with one canonical sighting; nothing lost, nothing doubled.
- ``mailsync run`` stopped with Ctrl+C, and killed, and started again: the accounts keep
  syncing without a manual step and dedup still knows what it has seen (a copy arriving in
  a second account after the restart is linked, not made canonical again).
- The broker's data deleted while everything is stopped: MongoDB's accounts are published
  again, every activity is still there, and new mail syncs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from devservers import KafkaBroker, MailUser
from devservers.corpus import Mail, build
from tests.fixtures.mailsync_run import MailsyncRun
from tests.fixtures.pipeline import Env, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

CUSTOMER = ("Ingrid Olsen", "ingrid.olsen@fjord-logistikk.no")
WHEN = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
MESSAGES = 2000


def _mail(rng: random.Random, to: MailUser, minutes: int) -> Mail:
    return build(rng, CUSTOMER, [("Team", to.address)], date=WHEN + dt.timedelta(minutes=minutes))


def _one_canonical(doc: dict[str, Any]) -> bool:
    return sum(not s["duplicate"] for s in doc["sightings"]) == 1


async def test_broker_killed_mid_sync_loses_and_doubles_nothing(
    env: Env, pipeline: Any, tmp_path: Path
) -> None:
    broker = KafkaBroker(tmp_path / "broker").start()
    try:
        env.overrides["kafka_bootstrap"] = broker.bootstrap
        user = env.mail_user("bulk")
        rng = random.Random(14)
        mails = [_mail(rng, user, i) for i in range(MESSAGES)]
        env.dovecot.deliver_many(user.address, (m.message for m in mails))
        await env.publish_accounts(env.account(user))

        async with env.mongo() as db, pipeline() as running:

            async def written(at_least: int) -> int | None:
                running.check()
                n: int = await db.activities.count_documents({})
                return n if n >= at_least else None

            before = await eventually(lambda: written(MESSAGES // 5), timeout=180, what="a fifth")
            broker.kill()
            await asyncio.sleep(2)
            # The same data and, since it is free again, the same port. In a thread: the
            # services keep running meanwhile, as they would in production (blocking the
            # loop froze them for the broker's 10-15 s start and expired every session).
            await asyncio.to_thread(broker.start)
            await eventually(lambda: written(MESSAGES), timeout=300, what="every message")
            await asyncio.sleep(3)  # anything doubled would be written by now
            docs = await db.activities.find({}, {"message_id": 1, "sightings": 1}).to_list(None)
    finally:
        broker.stop()

    assert before < MESSAGES, "the broker was killed after the sync had finished"
    assert sorted(d["message_id"] for d in docs) == sorted(m.message_id for m in mails)
    assert all(len(d["sightings"]) == 1 and _one_canonical(d) for d in docs)


async def _save_account(http: httpx.AsyncClient, env: Env, user: MailUser) -> str:
    imap = {"host": "127.0.0.1", "port": env.dovecot.imaps_port, "username": user.address}
    body = {"address": user.address, "imap": imap, "password": user.password}
    saved = await http.post("/v1/accounts", json=body)
    assert saved.status_code in (200, 201), saved.text
    account_id: str = saved.json()["account_id"]
    return account_id


async def _idle(http: httpx.AsyncClient, *account_ids: str) -> bool:
    for account_id in account_ids:
        state = (await http.get(f"/v1/accounts/{account_id}")).json().get("state") or {}
        if state.get("status") != "idle":
            return False
    return True


async def test_mailsync_run_restarts_keep_syncing_and_dedup_remembers(
    env: Env, tmp_path: Path
) -> None:
    assert env.dovecot.cert is not None
    anna, bob = env.mail_user("anna"), env.mail_user("bob")
    data = tmp_path / "data"
    run = MailsyncRun(
        data,
        env={
            "MAILSYNC_FETCHER_CA_FILE": str(env.dovecot.cert.cert),
            "MAILSYNC_FETCHER_POLL_INTERVAL_S": "2",
            "MAILSYNC_LOG_LEVEL": "WARNING",
        },
    )
    rng = random.Random(15)
    first, second, third, fourth = (_mail(rng, anna, i) for i in range(4))
    latencies: dict[str, float] = {}

    async def arrives(mail: Mail, sightings: int = 1) -> dict[str, Any]:
        """Wait until ``mail`` is an activity with ``sightings`` sightings; note the time."""
        began = time.monotonic()
        async with AsyncMongoClient[dict[str, Any]](run.mongo_uri, tz_aware=True) as client:

            async def found() -> dict[str, Any] | None:
                run.check()
                doc = await client.mailsync.activities.find_one({"message_id": mail.message_id})
                return doc if doc and len(doc["sightings"]) == sightings else None

            doc: dict[str, Any] = await eventually(found, timeout=90, what=mail.message_id)
        latencies[mail.message_id] = time.monotonic() - began
        return doc

    await run.start()
    try:
        base, token = run.api
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as http:
            ids = [await _save_account(http, env, u) for u in (anna, bob)]
            await eventually(lambda: _idle(http, *ids), timeout=90, what="both accounts idle")
        env.dovecot.deliver(anna.address, first.message)
        await arrives(first)

        # Ctrl+C, then the same command again: nothing to resume by hand.
        assert run.stop(signal.SIGINT) == 0, run.text[-3000:]
        await run.start()
        env.dovecot.deliver(bob.address, first.message)  # the same message, a second mailbox
        env.dovecot.deliver(anna.address, second.message)
        linked = await arrives(first, sightings=2)
        await arrives(second)
        canonical = [s["account_id"] for s in linked["sightings"] if not s["duplicate"]]
        assert canonical == [ids[0]], linked["sightings"]  # dedup's table survived

        # Killed outright (the embedded broker and database die with it), started again.
        run.stop(signal.SIGKILL)
        await run.start()
        env.dovecot.deliver(bob.address, third.message)
        await arrives(third)

        # The broker's data deleted while everything is stopped.
        assert run.stop(signal.SIGINT) == 0, run.text[-3000:]
        shutil.rmtree(data / "kafka")
        await run.start()
        assert await _restored(run), run.text[-3000:]
        env.dovecot.deliver(anna.address, fourth.message)
        await arrives(fourth)
        base, token = run.api
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as http:
            await eventually(lambda: _idle(http, *ids), timeout=90, what="idle after the loss")
        async with AsyncMongoClient[dict[str, Any]](run.mongo_uri, tz_aware=True) as client:
            docs = await client.mailsync.activities.find().to_list(None)
    finally:
        if run.proc is not None and run.proc.poll() is None:
            run.stop(signal.SIGINT)

    by_id = {d["message_id"]: d for d in docs}
    assert sorted(by_id) == sorted(m.message_id for m in (first, second, third, fourth))
    assert len(docs) == 4
    assert [len(by_id[m.message_id]["sightings"]) for m in (first, second, third, fourth)] == [
        2,
        1,
        1,
        1,
    ]
    assert all(_one_canonical(d) for d in docs)
    print("delivery -> activity after each restart (s):", latencies)


async def _restored(run: MailsyncRun) -> bool:
    """The warning may come a moment after the banner."""
    for _ in range(50):
        if "published again" in run.text:
            return True
        await asyncio.sleep(0.2)
    return False
