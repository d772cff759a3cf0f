"""Logins to one IMAP server, paced: a reconnect storm spread, one reconnect at once.

When an IMAP server restarts, every account of a replica loses its connection in the
same second and retries after the same short backoff: 5,000 accounts logged in at 2,700
a second in bench/scale.py, a burst that real servers answer with throttling or bans.
Each server host gets a budget (GCRA, the token bucket as a schedule): ``burst`` logins
at once, then one every ``1 / rate`` seconds, so one account reconnecting never waits
and 10,000 reconnecting are spread over ``10,000 / rate`` seconds. Per host, never
global: accounts on one server never hold up those on another (no circuit breaker).

A *handoff* (an account this replica starts: a rebalance moved it here, or the replica
started) takes a smaller slot, ``1 / handoff_rate``: its session moves from another
replica (or comes back after a restart of ours) to a server that is up and warm, and
the replica that gave it up closes one as this one opens one, where a server restart
has every client of the server reconnect at once to a cold server. Both kinds share the
host's one schedule, so together they never log in faster than the handoff rate, and a
reconnect queues behind the handoffs already reserved. At 200 a second a rebalance that
moves 5,000 accounts could not be done in under 25 s, against the 30 s of issue #16.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class LoginPacer:
    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        handoff_rate: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval = 1.0 / rate
        self._handoff_interval = 1.0 / (handoff_rate or rate)
        self._slack = (burst - 1) * self._interval
        self._clock = clock
        self._next: dict[str, float] = {}  # host -> its theoretical arrival time (GCRA)

    def reserve(self, host: str, *, handoff: bool = False) -> float:
        """Take the host's next login slot: the seconds to wait before using it (pure
        but for the clock; the slot is taken even if the caller gives up waiting)."""
        now = self._clock()
        due = max(self._next.get(host, now), now)
        self._next[host] = due + (self._handoff_interval if handoff else self._interval)
        return max(0.0, due - now - self._slack)

    async def admit(self, host: str, *, handoff: bool = False) -> None:
        """Wait for a login slot to ``host`` (``handoff``: for an account starting here)."""
        wait = self.reserve(host, handoff=handoff)
        if wait > 0:
            await asyncio.sleep(wait)
