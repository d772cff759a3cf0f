"""Changes the fetcher sees in synced folders, after a message was published.

``mailsync.mailbox-events`` (key: account id): a message's flags changed (\\Seen,
\\Flagged, \\Answered...), or it was expunged from the folder (deleted, or moved
elsewhere by the user), or it was renumbered by a UIDVALIDITY change that kept the
folder's messages, or moved by mailsync itself as the account's processed-mail action
(with its new place when the server said it: RFC 4315 COPYUID). The activity writer
applies them to the activity's sighting.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field

from schemas._base import Model
from schemas.common import FolderRole, MessageLocation


class FlagsChanged(Model):
    kind: Literal["flags"] = "flags"
    location: MessageLocation
    flags: tuple[str, ...]
    modseq: int | None = Field(default=None, description="RFC 7162 MODSEQ of the change.")
    at: dt.datetime


class Expunged(Model):
    kind: Literal["expunged"] = "expunged"
    location: MessageLocation
    reason: Literal["expunged", "moved"] = Field(
        default="expunged",
        description="moved: mailsync moved it (processed mail) and the server did not say "
        "where to (no UIDPLUS); expunged: it left the folder otherwise.",
    )
    at: dt.datetime


class Remapped(Model):
    """The folder's UIDVALIDITY changed but it holds the same message (compared by
    Message-ID): the sighting at ``location`` now has this UIDVALIDITY and UID."""

    kind: Literal["remapped"] = "remapped"
    location: MessageLocation = Field(description="Where the message was (old UIDVALIDITY).")
    uidvalidity: int = Field(ge=1)
    uid: int = Field(ge=1)
    at: dt.datetime


class Moved(Model):
    """mailsync moved the message (processed mail) and the server said where: the
    sighting at ``location`` is now in ``folder`` under this UIDVALIDITY and UID (RFC
    4315 COPYUID, sent by UID COPY and by UID MOVE, RFC 6851 4.3)."""

    kind: Literal["moved"] = "moved"
    location: MessageLocation = Field(description="Where the message was.")
    folder: str
    folder_role: FolderRole
    uidvalidity: int = Field(ge=1)
    uid: int = Field(ge=1)
    at: dt.datetime


MailboxChange = FlagsChanged | Expunged | Remapped | Moved


class MailboxEvent(Model):
    """The topic's value: one of the event kinds, told apart by ``event.kind``."""

    schema_version: Literal[1] = 1
    event: Annotated[MailboxChange, Field(discriminator="kind")]
