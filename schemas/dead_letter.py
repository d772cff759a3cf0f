"""A message a stage could not process, kept whole with the reason (nothing is dropped)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
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

    @classmethod
    def for_record(
        cls,
        *,
        stage: str,
        reason: str,
        topic: str,
        partition: int,
        offset: int,
        headers: Sequence[tuple[str, bytes]] | None,
    ) -> DeadLetterMeta:
        """The dead letter of one consumed record, keeping its metadata header if readable."""
        original = None
        for name, value in headers or ():
            if name == "mailsync-meta":
                try:
                    original = json.loads(value)
                except ValueError:
                    original = None
        return cls(
            stage=stage,
            reason=reason,
            source_topic=topic,
            source_partition=partition,
            source_offset=offset,
            original_meta=original if isinstance(original, dict) else None,
            at=dt.datetime.now(dt.UTC),
        )
