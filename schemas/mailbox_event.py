"""Changes the fetcher sees in synced folders, after a message was published.

``mailsync.mailbox-events`` (key: account id): a message's flags changed (\\Seen,
\\Flagged, \\Answered...), or it was expunged from the folder (deleted, or moved
elsewhere by the user), or it was renumbered by a UIDVALIDITY change that kept the
folder's messages. The activity writer applies them to the activity's sighting.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field

from schemas._base import Model
from schemas.common import MessageLocation


class FlagsChanged(Model):
    kind: Literal["flags"] = "flags"
    location: MessageLocation
    flags: tuple[str, ...]
    modseq: int | None = Field(default=None, description="RFC 7162 MODSEQ of the change.")
    at: dt.datetime


class Expunged(Model):
    kind: Literal["expunged"] = "expunged"
    location: MessageLocation
    at: dt.datetime


class Remapped(Model):
    """The folder's UIDVALIDITY changed but it holds the same message (compared by
    Message-ID): the sighting at ``location`` now has this UIDVALIDITY and UID."""

    kind: Literal["remapped"] = "remapped"
    location: MessageLocation = Field(description="Where the message was (old UIDVALIDITY).")
    uidvalidity: int = Field(ge=1)
    uid: int = Field(ge=1)
    at: dt.datetime


MailboxChange = FlagsChanged | Expunged | Remapped


class MailboxEvent(Model):
    """The topic's value: one of the event kinds, told apart by ``event.kind``."""

    schema_version: Literal[1] = 1
    event: Annotated[MailboxChange, Field(discriminator="kind")]
