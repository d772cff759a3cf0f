"""Activities written per minute over the last minutes, for the status page (pure).

Counted from the activity documents' ``created_at``: a message the writer stored as a
new activity. Another sighting of a known message adds to an existing activity and is
not counted. Minutes are whole UTC minutes, the last one still running.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from pydantic import AwareDatetime, Field

from schemas._base import Model

WINDOW_MINUTES = 15


class MinuteCount(Model):
    minute: AwareDatetime = Field(description="Start of the minute (UTC).")
    activities: int = Field(ge=0)


class Throughput(Model):
    since: AwareDatetime = Field(description="Start of the first minute counted (UTC).")
    until: AwareDatetime = Field(description="When it was counted (UTC).")
    activities: int = Field(ge=0, description="New activities in all those minutes.")
    per_minute: tuple[MinuteCount, ...] = Field(description="Oldest first; the last is running.")


def window_start(now: dt.datetime, minutes: int = WINDOW_MINUTES) -> dt.datetime:
    """The start of the first of the ``minutes`` whole minutes ending with ``now``'s."""
    this_minute = now.astimezone(dt.UTC).replace(second=0, microsecond=0)
    return this_minute - dt.timedelta(minutes=minutes - 1)


def per_minute(
    created: Iterable[dt.datetime], now: dt.datetime, minutes: int = WINDOW_MINUTES
) -> Throughput:
    """Count ``created`` times into the window's minutes; times outside it are ignored."""
    start = window_start(now, minutes)
    counts = [0] * minutes
    for at in created:
        index = int((at - start).total_seconds() // 60)
        if 0 <= index < minutes:
            counts[index] += 1
    return Throughput(
        since=start,
        until=now.astimezone(dt.UTC),
        activities=sum(counts),
        per_minute=tuple(
            MinuteCount(minute=start + dt.timedelta(minutes=i), activities=n)
            for i, n in enumerate(counts)
        ),
    )
