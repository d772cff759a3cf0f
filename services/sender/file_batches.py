"""Which sent messages are filed together, and how one SEARCH looks for all of them (pure).

Requests of one account that reach filing while an earlier filing of it is under way
wait, and then go together: one EXAMINE, one SEARCH and one APPEND for the lot
(:mod:`services.sender.filing`). A batch is taken in arrival order, up to
:data:`MAX_MESSAGES` or :data:`MAX_BYTES` (a message larger than that goes alone), and
never holds two messages with one Message-ID: the second waits for the next batch,
whose search finds the first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol, TypeVar

from services.imap import quote, search_date

MAX_MESSAGES = 32
MAX_BYTES = 8 * 1024 * 1024


class Pending(Protocol):
    @property
    def message_id(self) -> str: ...
    @property
    def message(self) -> bytes: ...
    @property
    def sent_at(self) -> dt.datetime: ...


P = TypeVar("P", bound=Pending)


def take_batch(
    waiting: Sequence[P], *, max_messages: int = MAX_MESSAGES, max_bytes: int = MAX_BYTES
) -> tuple[list[P], list[P]]:
    """``waiting`` (oldest first) split into the next batch and what stays waiting."""
    batch: list[P] = []
    rest: list[P] = []
    ids: set[str] = set()
    size = 0
    for pending in waiting:
        full = len(batch) >= max_messages or (batch and size + len(pending.message) > max_bytes)
        if full or pending.message_id in ids:
            rest.append(pending)
            continue
        batch.append(pending)
        ids.add(pending.message_id)
        size += len(pending.message)
    return batch, rest


def search_any(message_ids: Sequence[str], earliest: dt.datetime) -> str:
    """UID SEARCH criteria matching any of ``message_ids``, sent at ``earliest`` or after.

    RFC 3501 6.4.4: OR takes two keys, so n keys are ``OR OR k1 k2 k3`` (prefix form);
    HEADER matches a substring, the angle brackets anchor it. SINCE (by INTERNALDATE,
    which the server's index holds) keeps a Sent folder of years from being read header
    by header on every send; a day's margin covers time zones.
    """
    if not message_ids:
        raise ValueError("no Message-ID to search for")
    since = search_date(earliest - dt.timedelta(days=1))
    keys = " ".join(f"HEADER Message-ID {quote(m)}" for m in message_ids)
    return f"SINCE {since} {'OR ' * (len(message_ids) - 1)}{keys}"
