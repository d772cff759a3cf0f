"""The fetcher's membership of the accounts group: aiokafka adapters, no decisions.

- :class:`StickyAssignor` runs :func:`services.fetcher.assignment.assign` as the group
  leader's assignor. Each member reports, in its subscription's user data, the
  partitions whose accounts it may still be running; the assignment's user data lists
  the partitions held back this generation, and the member that lost them asks for the
  follow-up rebalance that hands them out, once it stopped their accounts.
- :class:`SessionGuard` knows when the coordinator last confirmed this member. A member
  the broker drops (its session expired, or it did not rejoin within the rebalance
  timeout) has its partitions handed to the others at once, with nobody reporting
  them: so it must have stopped its accounts before then. The broker drops a member no
  sooner than ``session`` (= the rebalance timeout, see ``app.py``) after the last
  request of it that the broker answered without error (a Heartbeat, JoinGroup or
  SyncGroup: the broker received it after we sent it, and a rebalance it was not in
  began after it). The guard measures from that request's send time, and the table
  stops every account :data:`GUARD_SHARE` of the session later. aiokafka itself only
  marks the coordinator dead when its heartbeats fail for a session, and keeps the
  assignment until it rejoins.

- :func:`join_once` makes each join one JoinGroup request. aiokafka 0.14 sends one per
  assignor (aio-libs/aiokafka#1168, unreleased): the first with our protocol alone,
  the next with roundrobin added. The broker takes a known member's JoinGroup with
  other protocols as a reason for a new rebalance, so every join started the next;
  two replicas starting together went on failing each other's SyncGroup for minutes
  (CI: no accounts held after 120 s).

Private aiokafka API (0.14), checked by tests/unit/test_dependency_internals.py:
``GroupCoordinator._send_req`` is wrapped to see the coordinator's answers (and to
hold back the extra JoinGroup requests), and ``GroupCoordinator.request_rejoin`` asks
for the follow-up rebalance.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)
from aiokafka.protocol.group import HeartbeatRequest, JoinGroupRequest, SyncGroupRequest

from services.fetcher.assignment import (
    Member,
    assign,
    decode_held_back,
    decode_owned,
    encode_held_back,
    encode_owned,
)

log = logging.getLogger("mailsync.fetcher.membership")

# The accounts are stopped this share of the session after the last confirmation; the
# rest is the stop's own time (cancelling the tasks; LOGOUT is bounded by 5 s).
GUARD_SHARE = 2 / 3


class StickyAssignor(AbstractPartitionAssignor):  # type: ignore[misc]
    """aiokafka's assignor protocol, as an instance: ``owned`` says what this member runs."""

    name = "mailsync-sticky"
    version = 0

    def __init__(self, owned: Callable[[], set[TopicPartition]]):
        self._owned = owned
        self.generations = 0  # generations this assignor's protocol was chosen for
        self.held_back: frozenset[tuple[str, int]] = frozenset()

    def metadata(self, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        owned = frozenset((tp.topic, tp.partition) for tp in self._owned())
        return ConsumerProtocolMemberMetadata(self.version, sorted(topics), encode_owned(owned))

    def assign(
        self, cluster: Any, members: Mapping[str, ConsumerProtocolMemberMetadata]
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        topics = {t for m in members.values() for t in m.subscription}
        counts = {t: len(cluster.partitions_for_topic(t) or ()) for t in topics}
        every = frozenset((t, p) for t, n in counts.items() for p in range(n))
        group = {
            member_id: Member(frozenset(m.subscription), decode_owned(m.user_data, every))
            for member_id, m in members.items()
        }
        plan = assign({t: n for t, n in counts.items() if n}, group)
        if plan.held_back:
            log.info("partitions %s change owner: given out next generation", plan.held_back)
        user_data = encode_held_back(plan.held_back)
        result = {}
        for member_id, partitions in plan.assigned.items():
            by_topic: dict[str, list[int]] = {}
            for topic, partition in sorted(partitions):
                by_topic.setdefault(topic, []).append(partition)
            result[member_id] = ConsumerProtocolMemberAssignment(
                self.version, sorted(by_topic.items()), user_data
            )
        return result

    def on_assignment(self, assignment: ConsumerProtocolMemberAssignment) -> None:
        self.generations += 1
        self.held_back = decode_held_back(assignment.user_data)


class SessionGuard:
    """When this member's accounts must be stopped, failing a word from the coordinator."""

    def __init__(self, session_s: float):
        self._limit = session_s * GUARD_SHARE
        self._confirmed: float | None = None
        self._coordinator: Any = None

    def watch(self, coordinator: Any) -> None:
        """Wrap ``coordinator._send_req`` (private) once, before its first JoinGroup."""
        if coordinator is None or coordinator is self._coordinator:
            return
        self._coordinator = coordinator
        send = coordinator._send_req

        async def send_req(request: Any) -> Any:
            sent = time.monotonic()
            response = await send(request)
            confirms = (HeartbeatRequest, JoinGroupRequest, SyncGroupRequest)
            if isinstance(request, confirms) and getattr(response, "error_code", -1) == 0:
                self._confirmed = sent
            return response

        coordinator._send_req = send_req

    def expired(self) -> bool:
        """No confirmation within the guard's share of the session (or none yet)."""
        return self._confirmed is None or time.monotonic() - self._confirmed > self._limit

    def seconds_left(self) -> float:
        if self._confirmed is None:
            return 0.0
        return self._confirmed + self._limit - time.monotonic()

    def request_rejoin(self) -> None:
        """Ask for a rebalance (``GroupCoordinator.request_rejoin``, private)."""
        if self._coordinator is not None:
            self._coordinator.request_rejoin()


@dataclass(frozen=True)
class _NotSent:
    """What aiokafka gets for a JoinGroup :func:`join_once` holds back: no error, so it
    goes on to the next assignor's request (it reads nothing else of the answer)."""

    error_code: int = 0


_NOT_SENT = _NotSent()


def join_once(coordinator: Any) -> None:
    """Send only the JoinGroup that carries every assignor's protocol (see above).

    Wraps ``coordinator._send_req`` (private) once; install it after
    :meth:`SessionGuard.watch`, so that an answer not received confirms nothing."""
    if coordinator is None or getattr(coordinator, "_mailsync_join_once", False):
        return
    protocols = len(coordinator._assignors)
    send = coordinator._send_req

    async def send_req(request: Any) -> Any:
        if isinstance(request, JoinGroupRequest) and len(request._group_protocols) < protocols:
            return _NOT_SENT
        return await send(request)

    coordinator._send_req = send_req
    coordinator._mailsync_join_once = True
