"""The CRM activity: one document per distinct message, in MongoDB's ``activities``."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from schemas._base import Model
from schemas.common import Address, Direction, FolderRole


class SightingDoc(Model):
    """Where the activity's message was seen; every sighting after the first is a duplicate."""

    account_id: str
    folder: str
    uidvalidity: int
    uid: int
    folder_role: FolderRole
    alias: str | None = None
    duplicate: bool


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
    account_ids: tuple[str, ...] = Field(description="Accounts that hold a sighting.")
    sightings: tuple[SightingDoc, ...]
    created_at: dt.datetime
    updated_at: dt.datetime
