"""The accounts API's copy of every account record, for reads (MongoDB ``accounts``).

The compacted accounts topic is what the fetchers and dedup follow; the API keeps the
same records in MongoDB so that listing a user's mailboxes is one query, not a read of
the whole topic. The record is written here first and then published, so a save that
failed half-way is repeated whole by saving again.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from schemas._base import Model
from schemas.account import AccountRecord


class AccountDocument(Model):
    """Collection ``accounts``, ``_id`` = account id; the secret in it is encrypted."""

    schema_version: Literal[1] = 1
    id: str = Field(alias="_id")
    record: AccountRecord
    saved_at: dt.datetime
