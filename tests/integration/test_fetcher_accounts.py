"""Per-account isolation in the fetcher: a wrong password or a missing secret is reported
on that account and never holds up another one."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any, cast

import pytest

from devservers.corpus import build
from schemas.account import EncryptedSecret, Endpoint, Security
from tests.fixtures.pipeline import Env, Pipeline, eventually
from tests.integration.test_end_to_end import smtp_send

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CUSTOMER = ("Emily Carter", "emily.carter@northwind.example")


async def test_wrong_password_and_pending_credentials_do_not_stop_other_accounts(
    env: Env, pipeline: Pipeline
) -> None:
    good_user, bad_user, pending_user = (env.mail_user(n) for n in ("good", "bad", "pending"))
    suffix = env.overrides["mongo_database"]
    good = env.account(good_user, account_id=f"good-{suffix}")
    bad = env.account(
        bad_user,
        account_id=f"bad-{suffix}",
        secret=EncryptedSecret(ciphertext=env.box.encrypt("wrong password")),
    )
    pending = env.account(pending_user, account_id=f"pending-{suffix}", secret=None)
    await env.publish_accounts(bad, pending, good)
    when = dt.datetime(2026, 11, 3, 10, 0, tzinfo=dt.UTC)
    mail = build(random.Random(2), CUSTOMER, [("Good", good_user.address)], date=when)
    smtp_send(env, CUSTOMER[1], [good_user.address], mail.message)

    async with env.mongo() as db, pipeline() as running:

        async def states() -> dict[str, dict[str, Any]] | None:
            running.check()
            docs = {d["_id"]: d for d in await db.account_states.find().to_list(None)}
            wanted = {bad.account_id: "auth_failed", pending.account_id: "pending_credentials"}
            ok = all(docs.get(a, {}).get("status") == s for a, s in wanted.items())
            return docs if ok else None

        docs = await eventually(states, timeout=60, what="auth_failed and pending states")
        assert "login refused" in docs[bad.account_id]["reason"].lower()

        async def good_activity() -> dict[str, Any] | None:
            running.check()
            return cast(
                "dict[str, Any] | None",
                await db.activities.find_one({"message_id": mail.message_id}),
            )

        await eventually(good_activity, timeout=90, what="the good account's activity")

        # The user fixes the password: the account record changes and sync starts, with
        # no restart of anything.
        fixed = bad.model_copy(
            update={"secret": EncryptedSecret(ciphertext=env.box.encrypt(bad_user.password))}
        )
        await env.publish_accounts(fixed)

        async def recovered() -> bool:
            running.check()
            doc = await db.account_states.find_one({"_id": bad.account_id})
            return bool(doc) and doc["status"] == "idle"

        await eventually(recovered, timeout=60, what="the fixed account to sync")


async def test_starttls_and_plaintext_to_loopback(env: Env, pipeline: Pipeline) -> None:
    """STARTTLS (RFC 2595) on the plain IMAP port, and plaintext, allowed to loopback only."""
    tls_user, plain_user = env.mail_user("starttls"), env.mail_user("plain")
    suffix = env.overrides["mongo_database"]
    accounts = []
    for user, security in ((tls_user, Security.STARTTLS), (plain_user, Security.PLAIN)):
        endpoint = Endpoint(
            host="127.0.0.1", port=env.dovecot.imap_port, security=security, username=user.address
        )
        accounts.append(env.account(user, account_id=f"{security.value}-{suffix}", imap=endpoint))
    await env.publish_accounts(*accounts)
    mails = []
    for seed, user in enumerate((tls_user, plain_user)):
        mail = build(
            random.Random(100 + seed),
            CUSTOMER,
            [("U", user.address)],
            date=dt.datetime(2026, 1, 5, tzinfo=dt.UTC),
        )
        env.dovecot.deliver(user.address, mail.message)
        mails.append(mail.message_id)

    async with env.mongo() as db, pipeline() as running:

        async def both() -> bool:
            running.check()
            found = await db.activities.find(
                {"account_ids": {"$in": [a.account_id for a in accounts]}}
            ).to_list(None)
            return len(found) == 2

        await eventually(both, timeout=90, what="both accounts' activities")


def test_plaintext_to_a_remote_host_is_refused() -> None:
    from services.imap.errors import InsecureConnection
    from services.imap.session import ImapSession

    endpoint = Endpoint(host="imap.example.com", port=143, security=Security.PLAIN, username="u")
    with pytest.raises(InsecureConnection):
        ImapSession(endpoint, "secret")
