"""What erasure and retention leave behind: where a deleted message was, never what it said.

MongoDB's ``tombstones`` (one document per sighting deleted, ``_id`` its location). The
fetcher's import and reconcile skip a tombstoned UID, and the activity writer drops a
sighting at a tombstoned place or of a tombstoned activity in the same account, so a
message deleted on request (GDPR art. 17) or by retention never comes back while it is
still on the server. A tombstone is removed when its UID leaves the server, when the
account is removed, and by a resync of the account (which imports erased mail again).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from schemas._base import Model
from schemas.common import MessageLocation

TombstoneReason = Literal["erased", "retention"]


def tombstone_id(loc: MessageLocation) -> str:
    """The document id: the IMAP cursor of the message (RFC 3501 2.3.1.1)."""
    return f"{loc.account_id}/{loc.uidvalidity}/{loc.uid}/{loc.folder}"


class Tombstone(Model):
    schema_version: Literal[1] = 1
    id: str = Field(alias="_id", description="account/UIDVALIDITY/UID/folder.")
    account_id: str
    folder: str
    uidvalidity: int = Field(ge=1)
    uid: int = Field(ge=1)
    activity_id: str = Field(
        description="The activity id, itself a hash of the message's fingerprint: it finds "
        "the same message renumbered (UIDVALIDITY) or elsewhere in the account. No "
        "Message-ID, subject, address or content is kept."
    )
    reason: TombstoneReason
    at: dt.datetime

    @classmethod
    def of(
        cls, loc: MessageLocation, activity_id: str, reason: TombstoneReason, at: dt.datetime
    ) -> Tombstone:
        return cls(
            id=tombstone_id(loc),
            account_id=loc.account_id,
            folder=loc.folder,
            uidvalidity=loc.uidvalidity,
            uid=loc.uid,
            activity_id=activity_id,
            reason=reason,
            at=at,
        )
