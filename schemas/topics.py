"""The topic registry: every topic mailsync uses, who writes it and who reads it.

Services create, wait for and name their topics from here (with
``MAILSYNC_TOPIC_PREFIX`` prepended), ``mailsync schemas export`` writes it to
``schemas/json/topics.json``, and the Kubernetes topic resources and each service's
Kafka ACLs are generated from it. ``producers`` and ``consumers`` name services as
``mailsync <service>`` runs them (fetcher, dedup, activity-writer, sender, api), plus
the parties outside the services: ``cli`` (the ``mailsync`` admin commands), ``other
systems`` and ``operators``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from schemas.account import AccountRecord
from schemas.activity_event import ActivityConfirmation, ActivityEvent
from schemas.dead_letter import DeadLetterMeta
from schemas.mailbox_event import MailboxEvent
from schemas.raw_message import RawMessageMeta
from schemas.send_request import SendRequest, SendResult
from schemas.tagged_message import MessageTags, TaggedMessageMeta

DAY_MS = 24 * 3600 * 1000

Encoding = Literal["json", "rfc822+meta-header"]


@dataclass(frozen=True)
class Durability:
    """How many copies of every record an environment's cluster keeps: each partition on
    ``replicas`` brokers, and a write (acks=all, as every producer sends) succeeds once
    ``min_insync_replicas`` of them have it."""

    replicas: int
    min_insync_replicas: int


DURABILITY: dict[str, Durability] = {
    # Three brokers: one may be down (a rolling restart, a lost node) and writes still
    # reach two, so an acknowledged record survives the loss of another.
    "prod": Durability(replicas=3, min_insync_replicas=2),
    # One broker (the dev overlay's cluster, and `mailsync run`'s embedded one).
    "dev": Durability(replicas=1, min_insync_replicas=1),
    "embedded": Durability(replicas=1, min_insync_replicas=1),
}


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    model: type[BaseModel]
    encoding: Encoding
    partitions: int
    compacted: bool
    retention_ms: int | None
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    description: str

    def config(self, durability: Durability | None = None) -> dict[str, str]:
        """Kafka topic configs for creating this topic (with ``min.insync.replicas`` when
        the environment's ``durability`` is given)."""
        out = {"cleanup.policy": "compact" if self.compacted else "delete"}
        if self.retention_ms is not None:
            out["retention.ms"] = str(self.retention_ms)
        if durability is not None:
            out["min.insync.replicas"] = str(durability.min_insync_replicas)
        return out


ACCOUNTS = TopicSpec(
    name="mailsync.accounts",
    key="account_id (UTF-8)",
    model=AccountRecord,
    encoding="json",
    partitions=8,
    compacted=True,
    retention_ms=None,
    # The fetcher and the sender write back an OAuth2 refresh token that the provider
    # rotated (services/accounts/rotation.py); the writer and the sender read every
    # account without a group (services/common/accounts_table.py).
    producers=("api", "cli", "fetcher", "sender"),
    consumers=("fetcher", "dedup", "activity-writer", "sender"),
    description="Account configuration; compacted, a null value deletes the account.",
)
RAW_MESSAGES = TopicSpec(
    name="mailsync.raw-messages",
    key="account_id (UTF-8)",
    model=RawMessageMeta,
    encoding="rfc822+meta-header",
    partitions=8,
    compacted=False,
    retention_ms=7 * DAY_MS,
    # The sender publishes what it sent, so that it becomes an activity too.
    producers=("fetcher", "sender"),
    consumers=("dedup",),
    description="Every message fetched from a synced folder, as fetched.",
)
MAILBOX_EVENTS = TopicSpec(
    name="mailsync.mailbox-events",
    key="account_id (UTF-8)",
    model=MailboxEvent,
    encoding="json",
    partitions=8,
    compacted=False,
    retention_ms=7 * DAY_MS,
    producers=("fetcher",),
    consumers=("activity-writer",),
    description="Flag changes and expunges in synced folders (CONDSTORE, UID comparison).",
)
BY_FINGERPRINT = TopicSpec(
    name="mailsync.dedup-by-fingerprint",
    key="fingerprint (UTF-8)",
    model=MessageTags,
    encoding="rfc822+meta-header",
    partitions=8,
    compacted=False,
    retention_ms=7 * DAY_MS,
    producers=("dedup",),
    consumers=("dedup",),
    description="Internal to dedup: tagged sightings repartitioned by fingerprint.",
)
TAGGED_MESSAGES = TopicSpec(
    name="mailsync.tagged-messages",
    key="activity_id (UTF-8)",
    model=TaggedMessageMeta,
    encoding="rfc822+meta-header",
    partitions=8,
    compacted=False,
    retention_ms=7 * DAY_MS,
    producers=("dedup",),
    consumers=("activity-writer",),
    description="Messages tagged by account, alias and direction, with the duplicate verdict.",
)
ACTIVITY_EVENTS = TopicSpec(
    name="mailsync.activity-events",
    key="activity_id (UTF-8)",
    model=ActivityEvent,
    encoding="json",
    partitions=8,
    compacted=False,
    retention_ms=30 * DAY_MS,
    # The API (an account removed with purge) and `mailsync erase` announce deletions.
    producers=("activity-writer", "api", "cli"),
    consumers=("other systems",),
    description="Activities created, updated (a new sighting) or deleted, after the write.",
)
ACTIVITY_CONFIRMATIONS = TopicSpec(
    name="mailsync.activity-confirmations",
    key="account_id (UTF-8)",
    model=ActivityConfirmation,
    encoding="json",
    partitions=8,
    compacted=False,
    retention_ms=7 * DAY_MS,
    producers=("activity-writer",),
    consumers=("fetcher",),
    description="This IMAP message is durably an activity: it may be moved or marked now.",
)
DEAD_LETTERS = TopicSpec(
    name="mailsync.dead-letters",
    key="the original record key",
    model=DeadLetterMeta,
    encoding="rfc822+meta-header",
    partitions=1,
    compacted=False,
    retention_ms=30 * DAY_MS,
    producers=("dedup", "activity-writer", "sender"),
    consumers=("operators",),
    description="Records a stage could not process, kept whole with the reason.",
)

SEND_REQUESTS = TopicSpec(
    name="mailsync.send-requests",
    key="account_id (UTF-8)",
    model=SendRequest,
    encoding="json",
    partitions=8,
    compacted=False,
    retention_ms=7 * DAY_MS,
    producers=("api",),
    consumers=("sender",),
    description="Mail a user asks to send through one of their accounts.",
)
SEND_RESULTS = TopicSpec(
    name="mailsync.send-results",
    key="request_id (UTF-8)",
    model=SendResult,
    encoding="json",
    partitions=8,
    compacted=False,
    retention_ms=30 * DAY_MS,
    producers=("sender",),
    consumers=("other systems",),
    description="What became of each send request: sent, filed in Sent, or failed.",
)

TOPICS: tuple[TopicSpec, ...] = (
    ACCOUNTS,
    RAW_MESSAGES,
    MAILBOX_EVENTS,
    BY_FINGERPRINT,
    TAGGED_MESSAGES,
    ACTIVITY_EVENTS,
    ACTIVITY_CONFIRMATIONS,
    DEAD_LETTERS,
    SEND_REQUESTS,
    SEND_RESULTS,
)


def topics_of(service: str) -> tuple[TopicSpec, ...]:
    """The topics ``service`` produces or consumes, in registry order."""
    return tuple(t for t in TOPICS if service in t.producers or service in t.consumers)
