"""The consumer groups each service commits offsets in, named from the API's settings.

The status page reads their members and lag. Each service declares its own groups
(``consumer_groups()`` of its app, which the lag monitor reads); the API runs none of
them, so it names them from the same variables (a test checks the two agree).
"""

from __future__ import annotations

from typing import NamedTuple

from schemas.topics import (
    ACCOUNTS,
    ACTIVITY_CONFIRMATIONS,
    BY_FINGERPRINT,
    MAILBOX_EVENTS,
    RAW_MESSAGES,
    SEND_REQUESTS,
    TAGGED_MESSAGES,
)
from services.api.settings import ApiSettings


class WatchedGroup(NamedTuple):
    group: str
    topics: tuple[str, ...]
    # False: the group never commits offsets, so end minus committed is no lag.
    commits: bool = True


def service_groups(s: ApiSettings) -> dict[str, tuple[WatchedGroup, ...]]:
    """Service name (as ``mailsync <service>`` runs it) -> its groups and their topics."""
    return {
        "fetcher": (
            # Reads its partitions of the (compacted) accounts topic whole on every
            # assignment, and commits nothing (services/fetcher/assigned_accounts.py).
            WatchedGroup(s.fetcher_group, (s.topic(ACCOUNTS),), commits=False),
            WatchedGroup(f"{s.fetcher_group}-confirmations", (s.topic(ACTIVITY_CONFIRMATIONS),)),
        ),
        # faust's consumer group is its app id, with the topic prefix.
        "dedup": (
            WatchedGroup(
                f"{s.topic_prefix}{s.dedup_app_id}",
                (s.topic(RAW_MESSAGES), s.topic(BY_FINGERPRINT)),
            ),
        ),
        "activity-writer": (
            WatchedGroup(s.writer_group, (s.topic(TAGGED_MESSAGES),)),
            WatchedGroup(f"{s.writer_group}-mailbox-events", (s.topic(MAILBOX_EVENTS),)),
        ),
        "sender": (WatchedGroup(s.sender_group, (s.topic(SEND_REQUESTS),)),),
    }
