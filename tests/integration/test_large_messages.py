"""A large message is stored once: its raw blob and its attachment share their bytes (issue 15).

The raw message over the inline limit is kept as a manifest: its MIME skeleton plus, for
each large base64 part, a reference to the decoded part's blob, which is the very blob
the activity's attachment names. What MongoDB holds is measured (GridFS files and
chunks, as BSON), the raw message read back is byte-exact, and erasure removes a part
only when no other message uses it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any, cast

import bson
import pytest

from schemas.common import BlobRef
from schemas.topics import DEAD_LETTERS
from services.common.blobs import BlobStore
from services.topic_reader import read_topic
from tests.fixtures.pipeline import Env, Pipeline, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ATTACHMENT = os.urandom(22 * 1024 * 1024)  # incompressible, as a real PDF or zip is
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(100_000)


def message(n: int, to: str) -> bytes:
    """Real-world shape: mixed > (alternative > (plain, related > (html, inline png)), pdf),
    base64 in 76-character lines, CRLF (Python's SMTP policy, as mail clients write it)."""
    msg = EmailMessage()
    msg["From"] = "Archive <archive@shop.example>"
    msg["To"] = to
    msg["Subject"] = f"Scans {n}"
    msg["Date"] = f"Wed, 01 Jul 2026 10:0{n}:00 +0000"
    msg["Message-ID"] = f"<large-{n}@shop.example>"
    msg.set_content(f"Scans {n} attached.")
    msg.add_alternative(f'<p>Scans {n}<img src="cid:logo@shop.example"></p>', subtype="html")
    html = cast(list[EmailMessage], msg.get_payload())[1]
    html.add_related(PNG, maintype="image", subtype="png", cid="<logo@shop.example>")
    msg.add_attachment(ATTACHMENT, maintype="application", subtype="pdf", filename="scans.pdf")
    return msg.as_bytes(policy=SMTP)


async def stored_bytes(db: Any) -> int:
    """What the blob store holds in MongoDB: every GridFS file and chunk document, as BSON."""
    total = 0
    for name in ("blobs.files", "blobs.chunks"):
        async for doc in db[name].find():
            total += len(bson.encode(doc))
    return total


def erase(env: Env, mid: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "services", "erase", "--yes", "--message-id", mid],
        env=env.environ(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1 activities erased"


async def test_a_30_mb_message_is_stored_once_read_back_exactly_and_erased(
    env: Env, pipeline: Pipeline
) -> None:
    user = env.mail_user("large")
    account = env.account(user, account_id=f"large-{env.overrides['mongo_database']}")
    await env.publish_accounts(account)
    first, second = message(1, user.address), message(2, user.address)
    assert b"\r\n" in first and 30_000_000 < len(first) < 32_000_000
    env.dovecot.deliver(user.address, first)

    async with env.mongo() as db, pipeline() as running:
        blobs = BlobStore(db)

        async def written(mid: str) -> dict[str, Any] | None:
            running.check()
            doc: dict[str, Any] | None = await db.activities.find_one({"message_id": mid})
            return doc

        doc = await eventually(lambda: written("large-1@shop.example"), timeout=240, what="1")
        size = await stored_bytes(db)
        print(f"\n30 MB message: {len(first)} bytes; blob store holds {size} bytes")
        assert size < 1.2 * len(first)
        # The raw message, as dedup and a replaying writer read it: the exact bytes.
        # (Dovecot's delivery put its Return-Path and Delivered-To in front.)
        raw_sha = doc["sightings"][0]["raw_blob"]
        again = await blobs.get(BlobRef(sha256=raw_sha, size=len(first)))
        assert hashlib.sha256(again).hexdigest() == raw_sha and again.endswith(first)
        pdf = next(a for a in doc["attachments"] if a["filename"] == "scans.pdf")
        assert pdf["sha256"] == hashlib.sha256(ATTACHMENT).hexdigest()
        assert pdf["size"] == len(ATTACHMENT)

        # Another message with the same attachment adds only its own skeleton.
        env.dovecot.deliver(user.address, second)
        doc = await eventually(lambda: written("large-2@shop.example"), timeout=240, what="2")
        second_sha = doc["sightings"][0]["raw_blob"]
        both = await stored_bytes(db)
        print(f"and a second one with the same attachment: {both} bytes")
        assert both - size < 1_000_000

    # Erasing the first keeps what the second still uses, and the second reads back exactly.
    erase(env, "<large-1@shop.example>")
    async with env.mongo() as db:
        blobs = BlobStore(db)
        ids = {f["_id"] for f in await db["blobs.files"].find().to_list(None)}
        assert raw_sha not in ids
        assert pdf["sha256"] in ids
        again = await blobs.get(BlobRef(sha256=second_sha, size=len(second)))
        assert hashlib.sha256(again).hexdigest() == second_sha and again.endswith(second)

    # A writer reading the tagged topic from its start again (lost offsets, a new group)
    # finds the erased message's raw blob gone: dead-lettered, not brought back, no crash.
    bootstrap, dead_topic = env.overrides["kafka_bootstrap"], env.settings.topic(DEAD_LETTERS)
    async with env.mongo() as db, pipeline("activity-writer", writer_group="replay") as running:

        async def replayed() -> list[str]:
            running.check()
            dead = await read_topic(bootstrap, dead_topic)
            return [r.meta["reason"] for r in dead if r.meta]

        [reason] = await eventually(replayed, timeout=120, what="the replay's dead letter")
        assert reason == f"raw message {raw_sha} is no longer stored (erased)"
        left = [d["message_id"] for d in await db.activities.find().to_list(None)]
        assert left == ["large-2@shop.example"]

    # Erasing the second leaves nothing of either in the blob store (GDPR art. 17).
    erase(env, "<large-2@shop.example>")
    async with env.mongo() as db:
        assert await db["blobs.files"].count_documents({}) == 0
        assert await db["blobs.chunks"].count_documents({}) == 0
