"""The CRM activity: one document per distinct message, in MongoDB's ``activities``."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from schemas._base import Model
from schemas.common import Address, Direction
from schemas.tagged_message import Sighting


class SightingDoc(Sighting):
    """One IMAP message (account, folder, UIDVALIDITY, UID) that is this activity.

    The first stored sighting is canonical (``duplicate`` false) and stays so; every
    later one is a duplicate, whatever order the sightings arrived in.
    """

    flags: tuple[str, ...] = Field(default=(), description="IMAP flags in that mailbox.")
    expunged_at: dt.datetime | None = Field(
        default=None, description="When it left the folder (deleted or moved by the user)."
    )
    expunged_reason: Literal["expunged", "moved"] | None = Field(
        default=None,
        description="moved: mailsync moved it as processed mail to a place the server did "
        "not name (a move it named updates folder and UID instead).",
    )
    duplicate: bool
    raw_blob: str | None = Field(
        default=None,
        pattern="^[0-9a-f]{64}$",
        description="SHA-256 of the raw message in the blob store (over the inline limit); "
        "erased with the last sighting that names it.",
    )


class AttachmentMeta(Model):
    """An attachment's description; its content is in the blob store under ``sha256``."""

    filename: str = Field(description="Sanitised: no path, no control characters.")
    content_type: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern="^[0-9a-f]{64}$")
    content_id: str | None = Field(default=None, description="For inline images (cid:).")
    inline: bool = False


class ActivityDocument(Model):
    schema_version: Literal[1] = 1
    id: str = Field(alias="_id", description="Derived from the message fingerprint.")
    fingerprint: str
    message_id: str | None
    subject: str
    from_: Address | None = Field(alias="from")
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    date: dt.datetime | None
    direction: Direction
    snippet: str = Field(max_length=300)
    text_body: str = Field(default="", description="Plain text (from the HTML if no text part).")
    html_body: str | None = Field(
        default=None,
        description="Sanitised for display (nh3): no scripts, no event handlers, and remote "
        "images not loaded (their src removed).",
    )
    remote_images_blocked: int = Field(default=0, ge=0)
    body_truncated: bool = Field(default=False, description="A body was cut at the size limit.")
    attachments: tuple[AttachmentMeta, ...] = ()
    thread_id: str = Field(description="Same for every message of a conversation.")
    thread_key: str | None = Field(
        default=None, description="Normalised subject among the same participants (fallback)."
    )
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    message_id_conflict: bool = Field(
        default=False,
        description="Another message (other From, Date or Subject) has the same Message-ID; "
        "it is a distinct activity, listed in conflicts_with.",
    )
    conflicts_with: tuple[str, ...] = Field(
        default=(), description="Ids of the activities that share this Message-ID."
    )
    account_ids: tuple[str, ...] = Field(description="Accounts that hold a sighting.")
    sightings: tuple[SightingDoc, ...]
    created_at: dt.datetime
    updated_at: dt.datetime
