"""A message tagged by account and alias, with the dedup verdict.

Like the raw topic, the record value is the RFC 5322 message (or empty, with a blob
reference) and this model is the ``mailsync-meta`` header.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas._base import Model
from schemas.common import Direction, FolderRole
from schemas.raw_message import RawMessageMeta


class AccountTag(Model):
    account_id: str
    kind: Literal["personal", "shared"]
    owner: str | None = None
    group: str | None = None


class Sighting(Model):
    """One place the same message was seen: an account, a folder, a UID, an alias."""

    account_id: str
    folder: str
    uidvalidity: int
    uid: int
    folder_role: FolderRole
    alias: str | None = None


class MessageTags(Model):
    """What the tagging stage decides for one sighting (internal topic, keyed by fingerprint)."""

    schema_version: Literal[1] = 1
    raw: RawMessageMeta
    account: AccountTag
    alias: str | None = Field(description="Which of the account's addresses it reached or left.")
    direction: Direction
    fingerprint: str = Field(description="Normalised Message-ID, or a content hash.")
    activity_id: str = Field(description="Derived from the fingerprint alone: stable everywhere.")

    @property
    def sighting(self) -> Sighting:
        loc = self.raw.location
        return Sighting(
            account_id=loc.account_id,
            folder=loc.folder,
            uidvalidity=loc.uidvalidity,
            uid=loc.uid,
            folder_role=self.raw.folder_role,
            alias=self.alias,
        )


class TaggedMessageMeta(MessageTags):
    """Public output of dedup: the tags plus whether the CRM has seen this message already."""

    canonical: bool = Field(description="True for the first sighting of this fingerprint.")
    duplicate_of: Sighting | None = Field(description="The canonical sighting, when a duplicate.")
    sightings: tuple[Sighting, ...] = Field(description="Every sighting known so far, in order.")
