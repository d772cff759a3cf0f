"""Logins to one IMAP server, paced: a reconnect storm spread, one reconnect at once.

When an IMAP server restarts, every account of a replica loses its connection in the
same second and retries after the same short backoff: 5,000 accounts logged in at 2,700
a second in bench/scale.py, a burst that real servers answer with throttling or bans.
Each server host gets a budget (GCRA, the token bucket as a schedule): ``burst`` logins
at once, then one every ``1 / rate`` seconds, so one account reconnecting never waits
and 10,000 reconnecting are spread over ``10,000 / rate`` seconds. Per host, never
global: accounts on one server never hold up those on another (no circuit breaker).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class LoginPacer:
    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval = 1.0 / rate
        self._slack = (burst - 1) * self._interval
        self._clock = clock
        self._next: dict[str, float] = {}  # host -> its theoretical arrival time (GCRA)

    def reserve(self, host: str) -> float:
        """Take the host's next login slot: the seconds to wait before using it (pure
        but for the clock; the slot is taken even if the caller gives up waiting)."""
        now = self._clock()
        due = max(self._next.get(host, now), now)
        self._next[host] = due + self._interval
        return max(0.0, due - now - self._slack)

    async def admit(self, host: str) -> None:
        """Wait for a login slot to ``host``."""
        wait = self.reserve(host)
        if wait > 0:
            await asyncio.sleep(wait)
