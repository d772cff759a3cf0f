"""Connections per account (SMTP sessions, IMAP sessions), reused within a burst.

The dispatcher ``hold``s the account for as long as a request of it is in hand; a
connection given back is kept idle only while someone else holds the account (the
verdict is :func:`services.sender.reuse.keep_open`), and the account's idle ones are
closed as soon as the last holder lets go, so no connection outlives the work it
serves. At most ``per_account`` are open at once per account, so a burst does not
open dozens of sessions to one server; accounts never wait on each other.

A connection whose user raised (or called ``Lease.discard``) is closed, never reused.
Connections are also matched on ``identity`` (the endpoint and secret they were
opened with): an account record changed mid-burst is not served by an old session.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from services.sender.reuse import Limits, Used, keep_open

C = TypeVar("C")


@dataclass
class _Slot(Generic[C]):
    conn: C
    identity: object
    opened_at: float = field(default_factory=time.monotonic)
    uses: int = 0


@dataclass
class Lease(Generic[C]):
    conn: C
    reused: bool  # it served an earlier request: it may have died while idle
    broken: bool = False

    def discard(self) -> None:
        """Close the connection when given back (its state is not to be trusted)."""
        self.broken = True


class Pool(Generic[C]):
    def __init__(self, *, per_account: int, limits: Limits, close: Callable[[C], Awaitable[None]]):
        self._per_account = per_account
        self._limits = limits
        self._close = close
        self._idle: dict[str, list[_Slot[C]]] = {}
        self._room: dict[str, asyncio.Semaphore] = {}
        self._held: Counter[str] = Counter()

    @contextlib.asynccontextmanager
    async def hold(self, account: str) -> AsyncIterator[None]:
        """The caller has work for ``account`` in hand: keep its connections for now."""
        self._held[account] += 1
        try:
            yield
        finally:
            self._held[account] -= 1
            if self._held[account] <= 0:
                del self._held[account]
                for slot in self._idle.pop(account, []):
                    await self._close(slot.conn)

    @contextlib.asynccontextmanager
    async def connection(
        self,
        account: str,
        identity: object,
        open_: Callable[[], Awaitable[C]],
        *,
        fresh: bool = False,
    ) -> AsyncIterator[Lease[C]]:
        """A connection of ``account``: an idle one, else (or when ``fresh``) a new one."""
        room = self._room.setdefault(account, asyncio.Semaphore(self._per_account))
        async with room:
            slot = None if fresh else await self._take_idle(account, identity)
            if slot is None:
                slot = _Slot(await open_(), identity)
            lease = Lease(slot.conn, reused=slot.uses > 0)
            try:
                yield lease
            except BaseException:
                lease.broken = True
                raise
            finally:
                slot.uses += 1
                used = Used(slot.uses, time.monotonic() - slot.opened_at, lease.broken)
                others = self._held[account] - 1
                if keep_open(used, others_in_hand=others, limits=self._limits):
                    self._idle.setdefault(account, []).append(slot)
                else:
                    await self._close(slot.conn)

    async def _take_idle(self, account: str, identity: object) -> _Slot[C] | None:
        idle = self._idle.get(account, [])
        while idle:
            slot = idle.pop()
            if slot.identity == identity:
                return slot
            await self._close(slot.conn)  # opened with settings the account no longer has
        return None

    async def aclose(self) -> None:
        """Close every idle connection (at shutdown)."""
        idle, self._idle = self._idle, {}
        for slots in idle.values():
            for slot in slots:
                await self._close(slot.conn)
