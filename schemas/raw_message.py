"""A message as fetched from IMAP: the raw RFC 5322 bytes plus what the fetcher knows of it.

On Kafka the record value is the message itself (no JSON, no base64) and this model
travels as JSON in the ``mailsync-meta`` record header; see :mod:`schemas.envelope`.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from schemas._base import Model
from schemas.common import BlobRef, FolderRole, MessageLocation


class RawMessageMeta(Model):
    schema_version: Literal[1] = 1
    location: MessageLocation
    folder_role: FolderRole
    internaldate: dt.datetime | None = Field(description="IMAP INTERNALDATE: when it arrived.")
    size: int = Field(ge=0, description="RFC822.SIZE in bytes.")
    sha256: str = Field(pattern="^[0-9a-f]{64}$", description="SHA-256 of the raw message.")
    flags: tuple[str, ...] = ()
    fetched_at: dt.datetime
    blob: BlobRef | None = Field(
        default=None,
        description="Set when the message exceeded the inline limit: the record value is "
        "then empty and the message is in the blob store.",
    )
