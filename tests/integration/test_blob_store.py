"""The blob store: a batch of attachments stored once each, readable, after any crash."""

from __future__ import annotations

import hashlib

import pytest
from bson import Binary

from schemas.common import BlobRef
from services.common.blobs import CHUNK_BYTES, BlobStore
from tests.fixtures.pipeline import Env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_a_batch_is_stored_once_each_even_after_a_half_finished_write(env: Env) -> None:
    stored = b"%PDF-1.4 stored before"
    half = bytes(range(256)) * (CHUNK_BYTES // 128)  # two chunks and a bit
    new = [b"%PDF-1.4 offer", b"", bytes(reversed(range(256))) * 3000]
    async with env.mongo() as db:
        blobs = BlobStore(db)
        await blobs.ensure_indexes()
        await blobs.put(stored)
        # A writer that died after the first chunk of ``half`` and before its file document.
        await db["blobs.chunks"].insert_one(
            {"files_id": sha(half), "n": 0, "data": Binary(half[:CHUNK_BYTES])}
        )

        batch = {sha(d): d for d in [stored, half, *new]}
        await blobs.put_many(batch)
        await blobs.put_many(batch)  # a replay of the batch

        files = await db["blobs.files"].find().to_list(None)
        chunks = await db["blobs.chunks"].count_documents({})
        read = {d: await blobs.get(BlobRef(sha256=d, size=len(b))) for d, b in batch.items()}

    assert sorted(f["_id"] for f in files) == sorted(batch)
    assert read == batch
    expected_chunks = sum(-(-len(d) // CHUNK_BYTES) for d in batch.values())
    assert chunks == expected_chunks  # no chunk twice, none missing
