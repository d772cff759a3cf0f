"""Who each mailsync service is to Kafka, and what it may do there: its ACLs.

A service's ACLs are derived from the topic registry (:data:`schemas.topics.TOPICS`):
it may Write and Describe the topics it produces, Read and Describe those it consumes,
and Read the consumer groups it commits offsets in (join, commit, and the lag
monitor's OffsetFetch). The API's status page watches the pipeline (``watches``): it may
Describe every registry topic (ListOffsets: dead letters, lag) and every service's
group (DescribeGroups, OffsetFetch: members, state, lag), and read or join none of them.
dedup is a faust app: faust creates and owns the topics named
after its app id (the table's ``<app id>-sightings-changelog``, and any other internal
topic faust may add), so dedup may Create, Read, Write and Describe topics by that
prefix, and Read the group of the same name. Nothing else: no ``All``, no ``*``.

Not granted, on purpose:

- ``IdempotentWrite`` on the cluster: every producer is idempotent, but since Kafka 3.0
  (KIP-679) Write on any topic is enough for an idempotent producer's InitProducerId.
- ``Create`` on the registry's topics: where ACLs apply (the prod overlay) Strimzi's
  KafkaTopics own them and ``MAILSYNC_KAFKA_CREATE_TOPICS`` is off.
- ``TransactionalId``: no producer is transactional (faust's exactly_once was measured
  and not adopted: bench/RESULTS.md, Dedup). Adopting it later (faust's
  ``processing_guarantee="exactly_once"``, whose transactional ids are
  ``<app id>-<group>-<partition>``) means setting the principal's
  ``transactional_id_prefix``, which grants Write and Describe on those ids.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from schemas.topics import TOPICS

Workload = Literal["Deployment", "StatefulSet"]
Operation = Literal["Create", "Read", "Write", "Describe", "All"]
ResourceType = Literal["topic", "group", "transactionalId"]
PatternType = Literal["literal", "prefix"]

ORDER: tuple[Operation, ...] = ("Create", "Read", "Write", "Describe", "All")
# Kafka's authorizer: Read, Write (and Delete, Alter) imply Describe.
IMPLIES_DESCRIBE = frozenset({"Read", "Write", "All"})


@dataclass(frozen=True)
class Acl:
    """An allow rule of a Strimzi ``simple`` authorization."""

    resource: ResourceType
    name: str
    pattern: PatternType
    operations: tuple[Operation, ...]
    why: str


@dataclass(frozen=True)
class Principal:
    """A service as Kafka knows it.

    ``groups``: the consumer groups it commits offsets in, as its settings name them by
    default (services/<service>/settings.py and app.py); ``faust_app_id``: dedup's faust
    application id, the name of its group and the prefix of its internal topics
    (both after ``MAILSYNC_TOPIC_PREFIX``). ``workload``: the kind of the service's
    workload in deploy/base, which its login patch (kafka-credentials.yaml) targets.
    """

    service: str
    groups: tuple[str, ...] = ()
    faust_app_id: str | None = None
    transactional_id_prefix: str | None = None  # exactly-once: not adopted (see above)
    watches: bool = False  # the status page: Describe on every topic and service group
    workload: Workload = "Deployment"

    @property
    def user(self) -> str:
        """The KafkaUser, its Secret, and the SASL username: the workload's name."""
        return f"mailsync-{self.service}"

    def consumer_groups(self, topic_prefix: str = "") -> tuple[str, ...]:
        faust = (topic_prefix + self.faust_app_id,) if self.faust_app_id else ()
        return self.groups + faust

    def acls(self, topic_prefix: str = "") -> tuple[Acl, ...]:
        """Every allow rule the service needs, topics in registry order."""
        out: list[Acl] = []
        for spec in TOPICS:
            ops: set[Operation] = set()
            roles = []
            if self.service in spec.producers:
                ops |= {"Write", "Describe"}
                roles.append("produces")
            if self.service in spec.consumers:
                ops |= {"Read", "Describe"}
                roles.append("consumes")
            if not ops and self.watches:
                ops, roles = {"Describe"}, ["watches (status page: offsets, dead letters)"]
            if ops:
                name = topic_prefix + spec.name
                out.append(Acl("topic", name, "literal", _ordered(ops), " and ".join(roles)))
        if self.faust_app_id is not None:
            internal = f"{topic_prefix}{self.faust_app_id}-"
            out.append(
                Acl(
                    "topic",
                    internal,
                    "prefix",
                    ("Create", "Read", "Write", "Describe"),
                    "faust's internal topics (the table's changelog), created by mailsync-dedup "
                    "before faust starts",
                )
            )
        for group in self.consumer_groups(topic_prefix):
            out.append(Acl("group", group, "literal", ("Read",), "its consumer group"))
        if self.watches:
            for other in PRINCIPALS.values():
                for group in other.consumer_groups(topic_prefix):
                    why = f"watches {other.service}'s group (status page: members, lag)"
                    out.append(Acl("group", group, "literal", ("Describe",), why))
        if self.transactional_id_prefix is not None:
            out.append(
                Acl(
                    "transactionalId",
                    topic_prefix + self.transactional_id_prefix,
                    "prefix",
                    ("Write", "Describe"),
                    "exactly-once transactions",
                )
            )
        return tuple(out)


def _ordered(ops: Iterable[Operation]) -> tuple[Operation, ...]:
    return tuple(op for op in ORDER if op in set(ops))


PRINCIPALS: dict[str, Principal] = {
    p.service: p
    for p in (
        # MAILSYNC_FETCHER_GROUP (the accounts topic shared among replicas) and its
        # "-confirmations" group (activity-confirmations).
        Principal("fetcher", groups=("mailsync-fetcher", "mailsync-fetcher-confirmations")),
        # MAILSYNC_DEDUP_APP_ID: faust's group and internal topics. A StatefulSet: its
        # table's files on a disk per pod (deploy/base/dedup.yaml).
        Principal("dedup", faust_app_id="mailsync-dedup", workload="StatefulSet"),
        # MAILSYNC_WRITER_GROUP (tagged-messages) and its "-mailbox-events" group.
        Principal(
            "activity-writer",
            groups=("mailsync-activity-writer", "mailsync-activity-writer-mailbox-events"),
        ),
        # MAILSYNC_SENDER_GROUP (send-requests).
        Principal("sender", groups=("mailsync-sender",)),
        # Produces only; also what `mailsync accounts` and `mailsync erase` need, run in
        # an API pod; and watches the pipeline for the status page.
        Principal("api", watches=True),
    )
}


def permits(acls: Iterable[Acl], resource: ResourceType, name: str, operation: Operation) -> bool:
    """Whether ``acls`` allow ``operation`` on a resource, as Kafka's authorizer decides
    for allow rules: a literal rule matches the name (``*``: every name), a prefix rule
    its start; ``All`` allows every operation, and Read or Write imply Describe."""
    for acl in acls:
        if acl.resource != resource:
            continue
        if acl.pattern == "literal" and acl.name not in (name, "*"):
            continue
        if acl.pattern == "prefix" and not name.startswith(acl.name):
            continue
        if operation in acl.operations or "All" in acl.operations:
            return True
        if operation == "Describe" and IMPLIES_DESCRIBE & set(acl.operations):
            return True
    return False
