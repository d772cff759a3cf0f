"""Two independent writes awaited at once, neither left running when the other fails.

``asyncio.gather`` without ``return_exceptions`` raises the first failure while the
other awaitable goes on unwatched: a write that lands after its caller moved on (and
may land after a later write of the same document). :func:`both` waits until both have
settled, then raises the first one's error, else the second's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

A = TypeVar("A")
B = TypeVar("B")


async def both(first: Awaitable[A], second: Awaitable[B]) -> tuple[A, B]:
    """``first`` and ``second`` run at once; their results once both are done."""
    a, b = await asyncio.gather(first, second, return_exceptions=True)
    if isinstance(a, BaseException):
        raise a
    if isinstance(b, BaseException):
        raise b
    return a, b
