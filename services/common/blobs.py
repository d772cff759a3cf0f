"""The blob store: GridFS in the same MongoDB, one file per SHA-256 (stored once)."""

from __future__ import annotations

import contextlib
import hashlib

from gridfs import AsyncGridFSBucket
from gridfs.errors import FileExists
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from schemas.common import BlobRef
from services.common.mongo import Document


class BlobStore:
    def __init__(self, db: AsyncDatabase[Document], bucket: str = "blobs"):
        self._bucket = AsyncGridFSBucket(db, bucket_name=bucket)
        self._files = db[f"{bucket}.files"]

    async def put(self, data: bytes, sha256: str | None = None) -> BlobRef:
        """Store ``data`` under its SHA-256; storing the same bytes again is a no-op."""
        digest = sha256 or hashlib.sha256(data).hexdigest()
        if await self._files.find_one({"_id": digest}, {"_id": 1}) is not None:
            return BlobRef(sha256=digest, size=len(data))  # stored already: no upload
        with contextlib.suppress(FileExists, DuplicateKeyError):  # stored already
            await self._bucket.upload_from_stream_with_id(digest, digest, data)
        return BlobRef(sha256=digest, size=len(data))

    async def delete(self, sha256: str) -> bool:
        """Remove a blob; False when it was not there."""
        from gridfs.errors import NoFile

        try:
            await self._bucket.delete(sha256)
        except NoFile:
            return False
        return True

    async def get(self, ref: BlobRef) -> bytes:
        stream = await self._bucket.open_download_stream(ref.sha256)
        data: bytes = await stream.read()
        return data
