"""The blob store: GridFS in the same MongoDB, one file per SHA-256 (stored once).

Blobs are written in GridFS's own layout (the GridFS spec: a ``blobs.files`` document
and ``blobs.chunks`` of 255 KiB), so any GridFS reader, ours included, reads them.
We write the two documents ourselves instead of through ``GridIn``: every ``GridIn``
first checks the collections' indexes with an unfiltered ``find_one``, which SecantusDB
answers by scanning the whole collection, so storing N attachments cost O(N^2)
(measured: 19 ms per check at 50 files, 117 ms at 400). The indexes are made once, at
start, by :meth:`BlobStore.ensure_indexes`. The chunks go first and the file documents
last (a batch in one write each), so a reader never sees a file whose chunks are missing.

A raw message over the inline limit is stored by :meth:`BlobStore.put_message` as a
manifest (:mod:`.mime_layout`): its file document has the message's length and SHA-256,
its chunks hold the skeleton (the message without its large base64 parts), and
``metadata.parts`` names each part's decoded bytes, stored as a blob of their own: the
very blob the activity's attachment is, so a 30 MB message with a 22 MB attachment
takes 22 MB, not 52. :meth:`BlobStore.get` puts the message together again, checked
against its SHA-256. Plain GridFS readers refuse a manifest (its chunks are shorter
than its length) rather than read the wrong bytes. A blob is deleted by
:meth:`BlobStore.collect` only when nothing uses it: no activity (the caller says) and
no manifest.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bson import Binary
from gridfs import AsyncGridFSBucket
from gridfs.errors import CorruptGridFile, NoFile
from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from schemas.common import BlobRef
from services.common.mime_layout import Part, assemble, split
from services.common.mongo import Document, insert_new

CHUNK_BYTES = 255 * 1024  # GridFS's default chunk size
_EOL = {b"\r\n": "crlf", b"\n": "lf"}


@dataclass(frozen=True)
class _File:
    """One file to write: the bytes of its chunks, its length, and for a manifest its parts."""

    chunks: bytes
    length: int
    metadata: dict[str, Any] = field(default_factory=dict)


def _part_doc(part: Part) -> dict[str, Any]:
    return {
        "offset": part.offset,
        "sha256": part.sha256,
        "size": part.size,
        "line": part.line,
        "eol": _EOL[part.eol],
    }


def _part(doc: Mapping[str, Any]) -> Part:
    eol = next(k for k, v in _EOL.items() if v == doc["eol"])
    return Part(doc["offset"], doc["sha256"], doc["size"], doc["line"], eol)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _digest(skeleton: bytes, parts: Sequence[Part], contents: Mapping[str, bytes]) -> str:
    return _sha256(assemble(skeleton, parts, contents))


class BlobStore:
    def __init__(self, db: AsyncDatabase[Document], bucket: str = "blobs"):
        self._bucket = AsyncGridFSBucket(db, bucket_name=bucket)
        self._files = db[f"{bucket}.files"]
        self._chunks = db[f"{bucket}.chunks"]

    async def ensure_indexes(self) -> None:
        """The indexes the GridFS spec asks for, and the manifests' parts; idempotent."""
        await self._files.create_indexes(
            [
                IndexModel([("filename", ASCENDING), ("uploadDate", ASCENDING)]),
                IndexModel([("metadata.parts.sha256", ASCENDING)], name="manifest_parts"),
            ]
        )
        await self._chunks.create_indexes(
            [IndexModel([("files_id", ASCENDING), ("n", ASCENDING)], unique=True)]
        )

    async def put(self, data: bytes, sha256: str | None = None) -> BlobRef:
        """Store ``data`` under its SHA-256; storing the same bytes again is a no-op."""
        digest = sha256 or hashlib.sha256(data).hexdigest()
        await self.put_many({digest: data})
        return BlobRef(sha256=digest, size=len(data))

    async def put_message(self, raw: bytes, sha256: str | None = None) -> BlobRef:
        """Store a raw message, its large base64 parts decoded and once (a manifest).

        The parts go first, the manifest last: a reader never finds a manifest whose
        parts are missing. A message without such parts is stored as it is.
        """
        digest = sha256 or hashlib.sha256(raw).hexdigest()
        ref = BlobRef(sha256=digest, size=len(raw))
        # Off the event loop: ~0.3 s of base64 for a 30 MB message.
        layout = await asyncio.to_thread(split, raw)
        if not layout.parts:
            await self.put_many({digest: raw})
            return ref
        if await self._files.find_one({"_id": digest}, {"_id": 1}) is not None:
            return ref
        rebuilt = await asyncio.to_thread(_digest, layout.skeleton, layout.parts, layout.contents)
        if rebuilt != digest:  # never expected (split checks each part): stored as it is
            await self.put_many({digest: raw})
            return ref
        await self.put_many(layout.contents)
        parts = [_part_doc(p) for p in layout.parts]
        await self._write({digest: _File(layout.skeleton, len(raw), {"parts": parts})})
        return ref

    async def put_many(self, blobs: Mapping[str, bytes]) -> None:
        """Store each of ``blobs`` (SHA-256 -> bytes) not stored yet, in three round trips.

        One query finds those stored already, one ``insert_many`` writes the chunks of
        the rest and one their file documents: a batch of several hundred attachments
        costs three (durable) writes instead of three each.
        """
        await self._write({digest: _File(data, len(data)) for digest, data in blobs.items()})

    async def _write(self, blobs: Mapping[str, _File]) -> None:
        if not blobs:
            return
        cursor = self._files.find({"_id": {"$in": sorted(blobs)}}, {"_id": 1})
        stored = {doc["_id"] async for doc in cursor}
        new = {digest: f for digest, f in blobs.items() if digest not in stored}
        if not new:
            return
        chunks = [
            {"files_id": digest, "n": n, "data": Binary(f.chunks[i : i + CHUNK_BYTES])}
            for digest, f in new.items()
            for n, i in enumerate(range(0, len(f.chunks), CHUNK_BYTES))
        ]
        now = dt.datetime.now(dt.UTC)
        files = [
            {
                "_id": digest,
                "filename": digest,
                "length": f.length,
                "chunkSize": CHUNK_BYTES,
                "uploadDate": now,
                **({"metadata": f.metadata} if f.metadata else {}),
            }
            for digest, f in new.items()
        ]
        # A concurrent writer of the same bytes (or a retry) may have written some
        # already: a duplicate is fine, any other failure is raised before a file
        # document names chunks that are not there.
        if chunks:
            await insert_new(self._chunks, chunks)
        await insert_new(self._files, files)

    async def delete(self, sha256: str) -> bool:
        """Remove a blob (a manifest, not its parts); False when it was not there."""
        try:
            await self._bucket.delete(sha256)
        except NoFile:
            return False
        return True

    async def collect(
        self, candidates: Iterable[str], in_use: Callable[[str], Awaitable[bool]]
    ) -> int:
        """Delete each candidate blob that nothing uses; return how many went.

        ``in_use`` says whether an activity still names a blob; a part of a manifest
        still stored is kept too. A manifest deleted makes its parts candidates.
        """
        todo = list(dict.fromkeys(candidates))
        removed = 0
        while todo:
            sha = todo.pop(0)
            if await in_use(sha):
                continue
            if await self._files.find_one({"metadata.parts.sha256": sha}, {"_id": 1}):
                continue  # a part of another stored message
            doc = await self._files.find_one({"_id": sha}, {"metadata.parts.sha256": 1})
            if doc is None:
                continue
            if await self.delete(sha):
                removed += 1
            parts = (doc.get("metadata") or {}).get("parts", [])
            todo.extend(p["sha256"] for p in parts if p["sha256"] not in todo)
        return removed

    async def get(self, ref: BlobRef) -> bytes:
        """A blob's bytes; a manifest put together again (raises ``NoFile`` if gone)."""
        stream = await self._bucket.open_download_stream(ref.sha256)
        metadata = stream.metadata or {}
        if "parts" not in metadata:
            data: bytes = await stream.read()
            return data
        chunks = await self._chunks.find({"files_id": ref.sha256}).to_list(None)
        skeleton = b"".join(bytes(c["data"]) for c in sorted(chunks, key=lambda c: c["n"]))
        parts = [_part(p) for p in metadata["parts"]]
        contents = {}
        for sha in dict.fromkeys(p.sha256 for p in parts):
            part_doc = await self._files.find_one({"_id": sha}, {"length": 1})
            length = part_doc["length"] if part_doc else 0
            contents[sha] = await self.get(BlobRef(sha256=sha, size=length))
        raw = await asyncio.to_thread(assemble, skeleton, parts, contents)
        if await asyncio.to_thread(_sha256, raw) != ref.sha256:
            raise CorruptGridFile(f"message {ref.sha256} does not reassemble to its SHA-256")
        return raw
