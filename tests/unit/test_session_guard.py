"""The fetcher's session guard: stop the accounts before the broker can drop us."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from aiokafka.protocol.group import HeartbeatRequest

from services.fetcher.membership import SessionGuard


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
