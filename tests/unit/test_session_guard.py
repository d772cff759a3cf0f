"""The fetcher's session guard: stop the accounts before the broker can drop us."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from aiokafka.protocol.group import HeartbeatRequest, JoinGroupRequest

from services.fetcher.membership import SessionGuard, join_once


class _Coordinator:
    def __init__(self) -> None:
        self.error_code = 0
        self.rejoins = 0

    async def _send_req(self, request: Any) -> Any:
        return SimpleNamespace(error_code=self.error_code)

    def request_rejoin(self) -> None:
        self.rejoins += 1


async def test_only_an_answered_group_request_confirms_the_member(monkeypatch: Any) -> None:
    clock = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    coordinator = _Coordinator()
    guard = SessionGuard(30.0)
    guard.watch(coordinator)
    guard.watch(coordinator)  # once only
    assert guard.expired()  # never confirmed: nothing may run on its word
    await coordinator._send_req(HeartbeatRequest("g", 1, "m"))
    clock[0] += 19.9
    assert not guard.expired()
    coordinator.error_code = 27  # REBALANCE_IN_PROGRESS: no confirmation
    await coordinator._send_req(HeartbeatRequest("g", 1, "m"))
    await coordinator._send_req(object())  # not a group request
    clock[0] += 0.2
    assert guard.expired()  # 20.1 s > two thirds of 30 s since the last confirmation
    guard.request_rejoin()
    assert coordinator.rejoins == 1


async def test_each_join_sends_the_join_group_with_every_protocol_only(
    monkeypatch: Any,
) -> None:
    """aiokafka 0.14 sends a JoinGroup per assignor, each with the protocols so far;
    the broker starts a new rebalance for the second (see membership.py)."""
    clock = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    coordinator = _Coordinator()
    coordinator._assignors = ["mailsync-sticky", "roundrobin"]  # type: ignore[attr-defined]
    sent: list[Any] = []
    answer = coordinator._send_req

    async def send_req(request: Any) -> Any:
        sent.append(request)
        return await answer(request)

    coordinator._send_req = send_req  # type: ignore[method-assign]
    guard = SessionGuard(30.0)
    guard.watch(coordinator)
    join_once(coordinator)
    join_once(coordinator)  # once only

    def join(*protocols: str) -> JoinGroupRequest:
        return JoinGroupRequest(
            "g", 30_000, 30_000, "m", "", "consumer", [(p, b"") for p in protocols]
        )

    first = await coordinator._send_req(join("mailsync-sticky"))
    assert sent == [] and first.error_code == 0  # aiokafka goes on to the next one
    assert guard.expired()  # a request not sent confirms nothing
    full = join("mailsync-sticky", "roundrobin")
    await coordinator._send_req(full)
    assert sent == [full] and not guard.expired()
    beat = HeartbeatRequest("g", 1, "m")
    await coordinator._send_req(beat)
    assert sent == [full, beat]
