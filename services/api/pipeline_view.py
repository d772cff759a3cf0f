"""What the status page says of the pipeline, read from Kafka: each service's consumer
groups (are its consumers in them, how far behind are they) and the dead-letter count.

The models, and the verdicts drawn from what Kafka answered (pure). The API cannot reach
the services' own ``/readyz`` (they may run in other pods), so a service's state is what
its consumer groups show, and "unknown" when Kafka did not answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import AwareDatetime, Field

from schemas._base import Model

GroupState = Literal["consuming", "rebalancing", "no consumer", "no group", "unknown"]
ServiceState = Literal[
    "consuming", "partly consuming", "rebalancing", "no consumer", "no group", "unknown"
]

# Kafka's states of a classic group (DescribeGroups), and of a KIP-848 consumer group.
_REBALANCING = frozenset({"PreparingRebalance", "CompletingRebalance", "Assigning", "Reconciling"})


class TopicLag(Model):
    topic: str
    lag: int = Field(ge=0, description="Records not yet committed, all partitions.")


class GroupView(Model):
    group: str
    state: GroupState
    kafka_state: str | None = Field(
        description="The state Kafka reports (Stable, Empty, Dead, PreparingRebalance...); "
        "null when it did not answer."
    )
    members: int | None = Field(description="Consumers in the group; null: unknown.")
    error: str | None = Field(
        default=None, description="Why Kafka did not describe the group (state unknown)."
    )
    commits: bool = Field(
        description="false: the group commits no offsets (the fetcher reads its partitions "
        "of the compacted accounts topic whole on every assignment), so it has no lag."
    )
    lag: tuple[TopicLag, ...] = Field(
        description="Per topic the group consumes; empty when unknown or not committed."
    )


class ServiceView(Model):
    service: str = Field(description="As `mailsync <service>` runs it.")
    state: ServiceState = Field(
        description="From its consumer groups: consuming (every group has members), partly "
        "consuming, rebalancing, no consumer (the groups are empty: not running), no group "
        "(it never committed, or not for a week), unknown (Kafka did not answer)."
    )
    detail: str
    lag: int | None = Field(description="Records behind, all its groups; null: unknown.")
    groups: tuple[GroupView, ...]


class DeadLetterView(Model):
    topic: str
    count: int | None = Field(
        description="Records on the dead-letter topic (end minus start offsets, all "
        "partitions); null: unknown."
    )
    retention_days: int | None = Field(
        description="How long each dead letter is kept (the topic's retention); null: always."
    )
    detail: str


class PipelineView(Model):
    read_at: AwareDatetime = Field(description="When Kafka was read (at most every 5 s).")
    services: tuple[ServiceView, ...]
    dead_letters: DeadLetterView


def group_state(kafka_state: str, members: int) -> GroupState:
    """A group's state in the page's words, from DescribeGroups."""
    if kafka_state == "Dead":
        return "no group"  # Kafka describes a group it does not know as Dead
    if kafka_state in _REBALANCING:
        return "rebalancing"
    if kafka_state == "Empty" or members == 0:
        return "no consumer"
    if kafka_state == "Stable":
        return "consuming"
    return "unknown"


def service_state(groups: Sequence[GroupView]) -> tuple[ServiceState, str]:
    """A service's state from its groups', with the sentence that says why."""
    states = {g.state for g in groups}
    named = ", ".join(g.group for g in groups)
    if not groups or "unknown" in states:
        why = "; ".join(f"{g.group}: {g.error}" for g in groups if g.error)
        return "unknown", f"Kafka did not describe its consumer groups ({why or named})"
    if states == {"consuming"}:
        members = ", ".join(f"{g.members} in {g.group}" for g in groups)
        return "consuming", f"consumers: {members}"
    if "rebalancing" in states:
        return "rebalancing", f"its consumers are being assigned partitions ({named})"
    if "consuming" in states:
        idle = ", ".join(g.group for g in groups if g.state != "consuming")
        return "partly consuming", f"no consumer in {idle}"
    if states == {"no group"}:
        return "no group", f"Kafka knows no group {named}: it has not run (or not for a week)"
    return "no consumer", f"no consumer in {named}: it is not running"


def unknown_group(group: str, commits: bool, error: str | None = None) -> GroupView:
    return GroupView(
        group=group,
        state="unknown",
        kafka_state=None,
        members=None,
        error=error,
        commits=commits,
        lag=(),
    )


def unknown_service(service: str, groups: Sequence[tuple[str, bool]], why: str) -> ServiceView:
    """``groups``: (name, whether it commits offsets)."""
    return ServiceView(
        service=service,
        state="unknown",
        detail=why,
        lag=None,
        groups=tuple(unknown_group(g, commits) for g, commits in groups),
    )


def records_on(start: Mapping[int, int], end: Mapping[int, int]) -> int:
    """Records a topic holds, from each partition's start (log start) and end offsets."""
    return sum(max(0, offset - start.get(partition, 0)) for partition, offset in end.items())
