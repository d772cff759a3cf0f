"""A message a stage could not process, kept whole with the reason (nothing is dropped)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from schemas._base import Model


class DeadLetterMeta(Model):
    """The ``mailsync-meta`` header of a dead letter; the value is the original record value."""

    schema_version: Literal[1] = 1
    stage: str
    reason: str
    source_topic: str
    source_partition: int
    source_offset: int
    original_meta: dict[str, Any] | None = None
    at: dt.datetime
