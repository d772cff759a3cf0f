"""Slots for the requests at work, handed out fairly across accounts.

The pump claims a batch ahead of the free slots (``app._pump``), so claimed requests
wait for a slot. With :class:`asyncio.Semaphore` they would be served first come,
first served: a quiet account's lone request, claimed after a busy account's batch,
would wait until that whole batch had begun. Here a freed slot goes to the waiting
request whose account has the fewest at work (:func:`~services.sender.fairness.next_turn`),
the longest waiting among those; a busy account alone still gets every slot.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable

from services.sender.fairness import next_turn


class FairSlots:
    def __init__(self, limit: int):
        self._free = limit
        self._at_work: Counter[str] = Counter()
        self._waiting: list[tuple[str, asyncio.Future[None]]] = []

    @contextlib.asynccontextmanager
    async def hold(self, account: str) -> AsyncIterator[Callable[[], None]]:
        """A slot for a request of ``account``, for the ``async with`` block; it yields
        a function that gives the slot back before the block ends (once)."""
        await self._acquire(account)
        held = True

        def let_go() -> None:
            nonlocal held
            if held:
                held = False
                self._release(account)

        try:
            yield let_go
        finally:
            let_go()

    def at_work(self) -> dict[str, int]:
        """Requests holding a slot, by account."""
        return dict(self._at_work)

    async def _acquire(self, account: str) -> None:
        if self._free > 0 and not self._waiting:
            self._take(account)
            return
        turn = asyncio.get_running_loop().create_future()
        entry = (account, turn)
        self._waiting.append(entry)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._release(account)  # granted, then cancelled before it could run
            elif entry in self._waiting:
                self._waiting.remove(entry)
            raise

    def _take(self, account: str) -> None:
        self._free -= 1
        self._at_work[account] += 1

    def _release(self, account: str) -> None:
        self._at_work[account] -= 1
        if self._at_work[account] <= 0:
            del self._at_work[account]
        self._free += 1
        while self._free > 0 and self._waiting:
            account, turn = self._waiting.pop(
                next_turn([a for a, _ in self._waiting], self._at_work)
            )
            if not turn.done():  # not cancelled meanwhile
                self._take(account)
                turn.set_result(None)
