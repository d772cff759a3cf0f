"""How long mail took to become an activity (pure).

Ingest latency runs from delivery (IMAP INTERNALDATE, RFC 3501 section 2.3.3: when the
server received the message) to the activity written. Mail that was already older
than ``BACKFILL_AGE`` when fetched is an initial import or a resync of old mail, not
live mail arriving late, and is left out: it would read as hours or months and hide
the latency users feel. A fetcher that was down that long is seen by other alerts
(auth_failed, the service down, lag). Pipeline latency, from the fetch to the write,
has no such exclusion: it is ours alone.
"""

from __future__ import annotations

import datetime as dt

BACKFILL_AGE = dt.timedelta(hours=24)


def ingest_latency(
    arrived: dt.datetime | None, fetched_at: dt.datetime, written_at: dt.datetime
) -> float | None:
    """Seconds from delivery to the write; None without INTERNALDATE or for backfill."""
    if arrived is None or fetched_at - arrived > BACKFILL_AGE:
        return None
    # The mail server's clock may run ahead of ours: never a negative latency.
    return max(0.0, (written_at - arrived).total_seconds())


def pipeline_latency(fetched_at: dt.datetime, written_at: dt.datetime) -> float:
    """Seconds from the fetch to the write."""
    return max(0.0, (written_at - fetched_at).total_seconds())
