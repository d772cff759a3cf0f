"""MongoDB's accounts are the source of truth: what the accounts topic lacks is published again.

The API writes an account to MongoDB first, then to the compacted accounts topic
(:mod:`services.api.store`). A broker that lost its data (a cluster rebuilt, a topic
deleted by hand, the embedded broker's directory removed) would leave the fetchers and
dedup without the accounts MongoDB still lists, and nothing would sync. At start the API
compares the two and publishes again every stored account the topic lacks or holds in
an older version. Accounts published to the topic only (by hand, or by a tool) are left
alone: the topic may hold more than MongoDB, never less.
"""

from __future__ import annotations

from collections.abc import Mapping

from schemas.account import AccountRecord


def to_restore(
    stored: Mapping[str, AccountRecord], on_topic: Mapping[str, AccountRecord]
) -> list[AccountRecord]:
    """The stored records to publish again: missing on the topic, or newer than its copy."""
    return [
        record
        for account_id, record in sorted(stored.items())
        if account_id not in on_topic or on_topic[account_id].updated_at < record.updated_at
    ]
