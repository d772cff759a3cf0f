"""What the CRM shows: bodies made safe, attachments stored once, replies threaded."""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any, cast

import pytest

from tests.fixtures.pipeline import Env, Pipeline, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 400 + b"\n%%EOF\n"


def message(n: int, sender: str, to: str, **headers: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = headers.pop("subject", f"Ceník {n}")
    msg["Date"] = (dt.datetime(2026, 7, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=n)).strftime(
        "%a, %d %b %Y %H:%M:%S +0000"
    )
    msg["Message-ID"] = f"<m{n}@shop.example>"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(f"Message {n}")
    msg.add_alternative(
        f'<p onclick="x()">Message {n}<img src="https://pixel.example/{n}.gif"></p>'
        "<script>document.location='https://evil.example'</script>",
        subtype="html",
    )
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="cenik-2026.pdf")
    return msg.as_bytes(policy=SMTP)


async def test_shared_attachment_stored_once_html_sanitised_and_reply_threaded(
    env: Env, pipeline: Pipeline
) -> None:
    user = env.mail_user("content")
    account = env.account(
        user, account_id=f"content-{env.overrides['mongo_database']}", folders=("INBOX", "Sent")
    )
    await env.publish_accounts(account)
    for n in range(200):
        env.dovecot.deliver(user.address, message(n, "Shop <sales@shop.example>", user.address))
    # We wrote to the customer (filed in Sent), and the customer answered.
    env.dovecot.save(
        user.address,
        "Sent",
        message(1000, user.address, "buyer@customer.example", subject="Nabídka"),
    )
    env.dovecot.deliver(
        user.address,
        message(
            1001,
            "buyer@customer.example",
            user.address,
            subject="Re: Nabídka",
            In_Reply_To="<m1000@shop.example>",
            References="<m1000@shop.example>",
        ),
    )

    # A web-mail client that sends no References or In-Reply-To at all.
    env.dovecot.deliver(
        user.address, message(1002, "buyer@customer.example", user.address, subject="RE: Nabídka")
    )

    async with env.mongo() as db, pipeline() as running:

        async def all_written() -> bool:
            running.check()
            return bool(await db.activities.count_documents({}) == 203)

        await eventually(all_written, timeout=120, what="203 activities")
        blobs = await db["blobs.files"].find().to_list(None)
        one = await db.activities.find_one({"message_id": "m7@shop.example"})
        sent = await db.activities.find_one({"message_id": "m1000@shop.example"})
        reply = await db.activities.find_one({"message_id": "m1001@shop.example"})
        headerless = await db.activities.find_one({"message_id": "m1002@shop.example"})

    assert len(blobs) == 1 and blobs[0]["length"] == len(PDF)
    assert one["attachments"] == [
        {
            "filename": "cenik-2026.pdf",
            "content_type": "application/pdf",
            "size": len(PDF),
            "sha256": blobs[0]["_id"],
            "content_id": None,
            "inline": False,
        }
    ]
    assert "Message 7" in one["html_body"]
    for bad in ("onclick", "script", "evil.example", "pixel.example"):
        assert bad not in one["html_body"]
    assert one["remote_images_blocked"] == 1
    assert one["text_body"].strip() == "Message 7"
    assert sent["direction"] == "outbound"
    assert reply["thread_id"] == sent["thread_id"]
    assert headerless["thread_id"] == sent["thread_id"]  # same subject, same two people
    assert one["thread_id"] != sent["thread_id"]


async def test_a_20_mb_attachment(env: Env, pipeline: Pipeline) -> None:
    user = env.mail_user("huge")
    account = env.account(user, account_id=f"huge-{env.overrides['mongo_database']}")
    await env.publish_accounts(account)
    big = bytes(range(256)) * (20 * 1024 * 1024 // 256)
    msg = EmailMessage()
    msg["From"] = "archive@shop.example"
    msg["To"] = user.address
    msg["Subject"] = "Scans"
    msg["Message-ID"] = "<huge-1@shop.example>"
    msg.set_content("Attached.")
    msg.add_attachment(big, maintype="application", subtype="zip", filename="scans.zip")
    env.dovecot.deliver(user.address, msg.as_bytes(policy=SMTP))

    async with env.mongo() as db, pipeline() as running:

        async def written() -> dict[str, Any] | None:
            running.check()
            return cast(
                "dict[str, Any] | None",
                await db.activities.find_one({"message_id": "huge-1@shop.example"}),
            )

        doc = await eventually(written, timeout=180, what="the 20 MB message's activity")
        files = {f["_id"]: f["length"] for f in await db["blobs.files"].find().to_list(None)}
    [attachment] = doc["attachments"]
    assert attachment["size"] == len(big) and attachment["filename"] == "scans.zip"
    assert files[attachment["sha256"]] == len(big)
    assert len(files) == 2  # the attachment, and the raw message (over the inline limit)
