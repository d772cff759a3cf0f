"""Sightings say where the message is: processed mail moved by mailsync is followed to its
new folder and UID (RFC 4315 COPYUID, RFC 6851); the configured Sent folder is Sent."""

from __future__ import annotations

import datetime as dt
import random
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

import pytest

from devservers.corpus import build
from schemas.account import MoveProcessed
from tests.fixtures.pipeline import Env, Pipeline, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CUSTOMER = ("Petr Dvořák", "petr.dvorak@stavby-dvorak.cz")


async def test_a_moved_message_is_followed_to_its_new_folder_and_uid(
    env: Env, pipeline: Pipeline
) -> None:
    """UID MOVE (Dovecot sends COPYUID in an untagged OK, RFC 6851 4.3). The UID COPY
    path (COPYUID in the tagged OK) is parsed by the same code; the devserver cannot
    offer a server without MOVE but with UIDPLUS (capabilities cannot hold spaces)."""
    user = env.mail_user("follow")
    account = env.account(
        user,
        account_id=f"follow-{env.overrides['mongo_database']}",
        processed=MoveProcessed(folder="Trash"),
    )
    await env.publish_accounts(account)
    rng = random.Random(93)
    ids = []
    for day in range(1, 4):
        when = dt.datetime(2026, 2, day, tzinfo=dt.UTC)
        built = build(rng, CUSTOMER, [("P", user.address)], date=when)
        env.dovecot.deliver(user.address, built.message)
        ids.append(built.message_id)

    async with env.mongo() as db, pipeline() as running:
        trash = env.dovecot.status(user.address, "Trash")

        async def followed() -> list[dict[str, Any]] | None:
            running.check()
            docs = await db.activities.find().sort("date", 1).to_list(None)
            sightings = [d["sightings"][0] for d in docs]
            if len(docs) == 3 and all(s["folder"] == "Trash" for s in sightings):
                return sightings
            return None

        sightings = await eventually(followed, timeout=120, what="sightings in Trash")
    assert env.dovecot.status(user.address, "INBOX")["messages"] == "0"
    assert [s["uid"] for s in sightings] == [1, 2, 3]  # Trash's UIDs, from COPYUID
    assert {s["uidvalidity"] for s in sightings} == {int(trash["uidvalidity"])}
    assert {s["folder_role"] for s in sightings} == {"trash"}
    assert all(s.get("expunged_at") is None for s in sightings)


async def test_the_configured_sent_folder_is_sent_without_the_servers_flag(
    env: Env, pipeline: Pipeline
) -> None:
    user = env.mail_user("sentcfg")
    env.dovecot.create_folder(user.address, "Odeslané")  # no \Sent attribute
    account = env.account(
        user,
        account_id=f"sentcfg-{env.overrides['mongo_database']}",
        folders=("INBOX", "Odeslané"),
        sent_folder="Odeslané",
    )
    await env.publish_accounts(account)
    msg = EmailMessage()
    # Sent from an identity that is none of the account's addresses (a shared
    # mailbox's "send as"): only the folder tells that it went out.
    msg["From"] = "Boss <boss@example.net>"
    msg["To"] = "customer@example.org"
    msg["Subject"] = "quote"
    msg["Date"] = "Mon, 02 Feb 2026 10:00:00 +0000"
    msg["Message-ID"] = "<sent-cfg@example.net>"
    msg.set_content("here is the quote")
    env.dovecot.save(user.address, "Odeslané", msg.as_bytes(policy=SMTP))

    async with env.mongo() as db, pipeline() as running:

        async def written() -> dict[str, Any] | None:
            running.check()
            doc: dict[str, Any] | None = await db.activities.find_one()
            return doc

        doc = await eventually(written, timeout=90, what="the sent message's activity")
    assert doc["sightings"][0]["folder"] == "Odeslané"
    assert doc["sightings"][0]["folder_role"] == "sent"
    assert doc["direction"] == "outbound"
