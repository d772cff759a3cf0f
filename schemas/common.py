"""Small value types shared by several topics and documents."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from schemas._base import Model


class FolderRole(StrEnum):
    """What a folder is for, from RFC 6154 special-use attributes (never from its name)."""

    INBOX = "inbox"
    SENT = "sent"
    ARCHIVE = "archive"
    JUNK = "junk"
    TRASH = "trash"
    DRAFTS = "drafts"
    OTHER = "other"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"


class MessageLocation(Model):
    """Where a message lives: the IMAP cursor (RFC 3501 2.3.1.1), never a sequence number."""

    account_id: str
    folder: str = Field(description="Folder name, decoded from modified UTF-7 (RFC 3501 5.1.3).")
    uidvalidity: int = Field(ge=1)
    uid: int = Field(ge=1)


class BlobRef(Model):
    """A message or attachment too large to travel inline, stored once per SHA-256 in GridFS."""

    store: str = Field(default="gridfs", pattern="^gridfs$")
    sha256: str = Field(pattern="^[0-9a-f]{64}$", description="Also the GridFS file _id.")
    size: int = Field(ge=0)


class Address(Model):
    name: str = ""
    address: str
