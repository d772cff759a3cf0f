"""What the activity writer tells the world, after each write is durable.

``mailsync.activity-events`` (key: activity id): an activity was created, gained a
sighting or changed, or was deleted. Delivery is at least once: the same event may come
twice (after a crash between the write and the publish), never zero times.

``mailsync.activity-confirmations`` (key: account id): the message at this IMAP
location is safely an activity; the fetcher may now move or mark it as processed.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Literal

from pydantic import Field

from schemas._base import Model
from schemas.activity import SightingDoc
from schemas.common import FolderRole


class ActivityEventKind(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


class ActivityEvent(Model):
    schema_version: Literal[1] = 1
    kind: ActivityEventKind
    activity_id: str
    account_ids: tuple[str, ...] = Field(description="Accounts holding a sighting (after it).")
    message_id: str | None = None
    thread_id: str | None = None
    sighting: SightingDoc | None = Field(
        default=None, description="The sighting this event is about (created, updated)."
    )
    reason: str | None = Field(default=None, description="Why it was deleted.")
    at: dt.datetime


class ActivityConfirmation(Model):
    schema_version: Literal[1] = 1
    account_id: str
    folder: str
    uidvalidity: int
    uid: int
    folder_role: FolderRole | None = Field(
        default=None, description="The folder's special-use role (absent from older records)."
    )
    activity_id: str
    at: dt.datetime
