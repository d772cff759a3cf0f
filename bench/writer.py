"""The activity writer alone: documents/s from a prefilled tagged-messages topic,
against a plain ``insert_many`` of the same documents into the same database.

What is measured, and why
-------------------------
- **Prefill** (not in the figure): N messages of the pipeline benchmark's corpus are
  tagged as dedup would tag them (``services.mail`` headers, fingerprint and activity
  id; one sighting each, canonical) and published to tagged-messages.
- **Writer**: ``services.cli.SERVICES["activity-writer"]`` alone, as ``mailsync
  activity-writer`` runs it, with production settings against SecantusDB with
  ``--sync-on-commit``. The clock starts when its ``start()`` returned and stops when it
  has written N activities (its own count, after each durable write). Included: reading
  Kafka, parsing each message once, sanitising HTML, storing attachments, the insert,
  the events and confirmations (acks=all), and the offset commits.
- **Baseline**, in the same run and the same database: ``insert_many`` of the very same
  activity documents (mapped beforehand, so no parsing) in batches of the writer's batch
  size, into a collection with the same indexes. This is what the writer costs above the
  database's own price for the documents.
- **What it must store**, in the same run, into a database of its own: per batch, the
  batch's attachments through the blob store (``BlobStore.put_many``: one lookup, the
  chunks, the file documents, as the writer stores them) and then ``insert_many`` of its
  documents. The writer cannot write less than this; SecantusDB does the two one after
  the other whoever asks (measured: Activity writer section, issue #19), so this is the
  database's own price for everything the writer keeps (issue #19's target, restated).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._harness import ACCOUNT_ID, MB, Started, build_corpus, overrides_for, publish_account
from devservers import KafkaBroker, SecantusServer
from schemas.common import Direction, FolderRole, MessageLocation
from schemas.envelope import encode_headers
from schemas.raw_message import RawMessageMeta
from schemas.tagged_message import AccountTag, TaggedMessageMeta
from schemas.topics import TAGGED_MESSAGES, TOPICS
from services.activity_writer.mapping import to_activity
from services.activity_writer.repository import ActivityRepository
from services.cli import SERVICES
from services.common.blobs import BlobStore
from services.common.kafka import ensure_topics, producer
from services.common.lifecycle import run_services
from services.common.mongo import mongo_client
from services.common.settings import CommonSettings
from services.mail.headers import parse_headers
from services.mail.identity import identify

HEADING = "## Activity writer"
BATCH = 500


def tag(raw: bytes, uid: int) -> TaggedMessageMeta:
    now = dt.datetime.now(dt.UTC)
    ident = identify(parse_headers(raw), raw)
    meta = RawMessageMeta(
        location=MessageLocation(account_id=ACCOUNT_ID, folder="INBOX", uidvalidity=1, uid=uid),
        folder_role=FolderRole.INBOX,
        internaldate=now,
        size=len(raw),
        sha256="0" * 64,
        fetched_at=now,
    )
    tags = TaggedMessageMeta(
        raw=meta,
        account=AccountTag(account_id=ACCOUNT_ID, kind="personal", owner="owner-bench"),
        alias=None,
        direction=Direction.INBOUND,
        fingerprint=ident.fingerprint,
        activity_id=ident.activity_id,
        canonical=True,
        duplicate_of=None,
        sightings=(),
    )
    return tags.model_copy(update={"sightings": (tags.sighting,)})


async def _prefill(settings: CommonSettings, messages: list[bytes]) -> list[TaggedMessageMeta]:
    await ensure_topics(settings, TOPICS)
    await publish_account(settings)
    prod = producer(settings, client_id="bench-prefill")
    await prod.start()
    metas = []
    try:
        pending = []
        for uid, raw in enumerate(messages, 1):
            meta = tag(raw, uid)
            metas.append(meta)
            pending.append(
                await prod.send(
                    settings.topic(TAGGED_MESSAGES),
                    raw,
                    key=meta.activity_id.encode(),
                    headers=encode_headers(meta, in_blob=False),
                )
            )
        await asyncio.gather(*pending)
    finally:
        await prod.stop()
    return metas


async def _writer(
    overrides: dict[str, Any], expected: int, timeout_s: float
) -> tuple[float, float]:
    """(seconds to write ``expected`` activities from ``start()`` returned, ``start()``)."""
    service: Any = SERVICES["activity-writer"](overrides)
    stop = asyncio.Event()
    began = time.perf_counter()
    await service.start()
    start_s = time.perf_counter() - began
    began = time.perf_counter()
    runner = asyncio.create_task(run_services([Started(service)], stop, 15.0))
    try:
        while service.loop.written < expected:
            if runner.done():
                runner.result()
            if time.perf_counter() - began > timeout_s:
                raise TimeoutError(f"writer wrote {service.loop.written} of {expected}")
            await asyncio.sleep(0.05)
        return time.perf_counter() - began, start_s
    finally:
        stop.set()
        await runner


async def _baselines(
    settings: CommonSettings, messages: list[bytes], metas: list[Any]
) -> tuple[float, float]:
    """Seconds for ``insert_many`` of the documents; and for their attachments and them."""
    now = dt.datetime.now(dt.UTC)
    mapped = [to_activity(m, raw, now) for m, raw in zip(metas, messages, strict=True)]
    docs = [m.activity.model_dump(by_alias=True) for m in mapped]
    client = mongo_client(settings, app_name="bench-baseline")
    try:
        db = client["bench_baseline"]
        await ActivityRepository(db).ensure_indexes()
        began = time.perf_counter()
        for i in range(0, len(docs), BATCH):
            await db["activities"].insert_many(docs[i : i + BATCH], ordered=False)
        documents_s = time.perf_counter() - began
        db = client["bench_baseline_stored"]
        await ActivityRepository(db).ensure_indexes()
        blobs = BlobStore(db)
        await blobs.ensure_indexes()
        began = time.perf_counter()
        for i in range(0, len(docs), BATCH):
            await blobs.put_many(
                {
                    a.sha256: content
                    for item in mapped[i : i + BATCH]
                    for a, content in zip(
                        item.activity.attachments, item.attachment_contents, strict=True
                    )
                }
            )
            await db["activities"].insert_many(docs[i : i + BATCH], ordered=False)
        return documents_s, time.perf_counter() - began
    finally:
        await client.close()


def main(messages: int, seed: int, timeout_s: float) -> tuple[str, bool]:
    corpus = build_corpus(messages, seed)
    work = Path(tempfile.mkdtemp(prefix="mailsync-bench-writer-"))
    with KafkaBroker(work) as kafka, SecantusServer(work / "mongo") as mongo:
        overrides = overrides_for(kafka, mongo, work / "data")
        settings = CommonSettings(**overrides)

        async def both() -> tuple[float, float, float, float]:
            metas = await _prefill(settings, corpus.messages)
            writer_s, start_s = await _writer(overrides, len(corpus.messages), timeout_s)
            baseline_s, stored_s = await _baselines(settings, corpus.messages, metas)
            return writer_s, start_s, baseline_s, stored_s

        load_before = os.getloadavg()[0]
        writer_s, start_s, baseline_s, stored_s = asyncio.run(both())
        load_after = os.getloadavg()[0]
    n, size = len(corpus.messages), corpus.total_bytes / MB
    body = (
        f"{n} messages of the pipeline corpus ({size:.1f} MB, {corpus.with_attachment} with a "
        "PDF attachment), prefilled on tagged-messages; SecantusDB with `--sync-on-commit`.\n\n"
        "| | Seconds | Documents/s |\n|---|---:|---:|\n"
        f"| **Activity writer** (Kafka → parse → sanitise → attachments → insert → "
        f"events → commit) | {writer_s:.2f} | **{n / writer_s:,.0f}** |\n"
        f"| `insert_many` of the same documents, batches of {BATCH}, same indexes "
        f"| {baseline_s:.2f} | {n / baseline_s:,.0f} |\n"
        f"| what the writer must store: each batch's attachments (`BlobStore.put_many`) "
        f"and `insert_many` of its documents | {stored_s:.2f} | {n / stored_s:,.0f} |\n\n"
        f"The writer runs at {baseline_s / writer_s:.0%} of the database's own insert rate "
        f"for these documents, and at {stored_s / writer_s:.0%} of its rate for the "
        "documents and their attachments.\n\n"
        f"Not in the figures: `start()` of the activity writer {start_s:.1f}s.\n\n"
        f"- Load average (1 min) {load_before:.2f} before the writer, {load_after:.2f} after "
        f"(on {len(os.sched_getaffinity(0))} CPUs; anything else running skews the figures).\n"
    )
    return body, True
