"""Which fetcher replica gets which account partition: a sticky, two-step assignment.

A pure decision (no Kafka here; ``membership.py`` adapts it to aiokafka's assignor):
from every member's subscription and the partitions it reports it may still be running
(``owned``), the group leader computes

- a *target*: every partition of every subscribed topic to one member, spread evenly
  (counts within 1 per topic), each member keeping as many of its owned partitions as
  its share allows (the members owning most take the larger shares);
- the *assignment* handed out now: the target minus the partitions that change owner.
  A partition some member owns is never given to another member in the same
  generation: it is *held back* (given to nobody) while its owner, finding it missing
  from its own assignment, stops its accounts. The next generation, which the held-back
  list in the assignment asks for, finds it owned by nobody and hands it out.

So a partition is only ever assigned to a member when no other member of the group
reports owning it: two replicas never run one account's sync at once (a member absent
from the group stopped its accounts before the broker dropped it; see
``membership.py``). A partition reported by two members (which a correct replica never
causes) is held back from both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

Partition = tuple[str, int]  # (topic, partition)

USER_DATA_VERSION = 1


@dataclass(frozen=True)
class Member:
    """One member's JoinGroup metadata: its topics and the partitions it may still run."""

    topics: frozenset[str]
    owned: frozenset[Partition]


@dataclass(frozen=True)
class Plan:
    assigned: dict[str, frozenset[Partition]]  # member id -> what it runs from now on
    held_back: frozenset[Partition]  # changing owner: given out next generation
    target: dict[str, frozenset[Partition]] = field(default_factory=dict)


def assign(partitions: Mapping[str, int], members: Mapping[str, Member]) -> Plan:
    """The plan for this generation.

    Args:
        partitions: partition count of every topic the group subscribes to.
        members: every member of the new generation, by member id.
    """
    claims: dict[Partition, set[str]] = {}
    for member_id, member in members.items():
        # A member runs accounts of the topics it subscribes to only; a claim elsewhere
        # (a member of another installation sharing the group, or the "may run anything"
        # of unreadable user data) would hold that partition back for ever.
        for p in member.owned:
            if p[0] in member.topics:
                claims.setdefault(p, set()).add(member_id)
    target: dict[str, set[Partition]] = {m: set() for m in members}
    held: set[Partition] = set()
    for topic in sorted(partitions):
        eligible = sorted(m for m, member in members.items() if topic in member.topics)
        if not eligible:
            continue
        all_ps = [(topic, p) for p in range(partitions[topic])]
        keep = {m: sorted(p for p in all_ps if claims.get(p) == {m}) for m in eligible}
        base, extra = divmod(len(all_ps), len(eligible))
        by_owned = sorted(eligible, key=lambda m: (-len(keep[m]), m))
        quota = {m: base + (1 if i < extra else 0) for i, m in enumerate(by_owned)}
        kept: set[Partition] = set()
        for m in eligible:
            target[m].update(keep[m][: quota[m]])
            kept.update(keep[m][: quota[m]])
        pool = [p for p in all_ps if p not in kept]
        for m in by_owned:
            room = quota[m] - len(keep[m][: quota[m]])
            target[m].update(pool[:room])
            pool = pool[room:]
        # Given to a member other than one that owns it: not before the owner stopped.
        held.update(
            p for m in eligible for p in target[m] if p[0] == topic and claims.get(p, {m}) != {m}
        )
    return Plan(
        assigned={m: frozenset(ps - held) for m, ps in target.items()},
        held_back=frozenset(held),
        target={m: frozenset(ps) for m, ps in target.items()},
    )


def encode_owned(owned: frozenset[Partition]) -> bytes:
    """A member's subscription user data: the partitions whose accounts it may run."""
    return json.dumps({"v": USER_DATA_VERSION, "owned": sorted(owned)}).encode()


def decode_owned(data: bytes, every: frozenset[Partition]) -> frozenset[Partition]:
    """The partitions a member reports; ``every`` (it may run anything: nothing of it is
    given to another member) when the data is missing or not understood."""
    try:
        doc = json.loads(data)
        if doc.get("v") != USER_DATA_VERSION:
            return every
        return frozenset((str(t), int(p)) for t, p in doc["owned"])
    except (ValueError, TypeError, KeyError, AttributeError):
        return every


def encode_held_back(held_back: frozenset[Partition]) -> bytes:
    """An assignment's user data: the partitions held back, given out next generation."""
    return json.dumps({"v": USER_DATA_VERSION, "held_back": sorted(held_back)}).encode()


def decode_held_back(data: bytes) -> frozenset[Partition]:
    try:
        doc = json.loads(data)
        return frozenset((str(t), int(p)) for t, p in doc["held_back"])
    except (ValueError, TypeError, KeyError, AttributeError):
        return frozenset()
