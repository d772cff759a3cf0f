"""Where a task is suspended: the chain of coroutines it awaits, innermost last.

``Task.get_stack`` shows only the task's own coroutine (a suspended coroutine's frame
has no ``f_back``); a task that does not end when cancelled is stuck in the innermost
one, so this follows ``cr_await`` (and an async generator's ``ag_await``) down to it.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
from typing import Any


def awaiting(task: asyncio.Task[Any]) -> list[str]:
    """``file:line in function`` for each coroutine ``task`` is suspended in, outermost
    first; what it finally waits on (a future) last."""
    where: list[str] = []
    if task.done():
        return where
    current: Any = task.get_coro()
    for _ in range(100):  # a chain, but never trust it to end
        frame = getattr(current, "cr_frame", None) or getattr(current, "ag_frame", None)
        frame = frame or getattr(current, "gi_frame", None)
        if frame is None:
            if current is not None:
                where.append(repr(current)[:200])
            break
        where.append(f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        nxt = getattr(current, "cr_await", None) or getattr(current, "ag_await", None)
        current = _generator_of(nxt) or nxt or getattr(current, "gi_yieldfrom", None)
    return where


def _generator_of(step: Any) -> Any:
    """The async generator an ``async for`` step (its ``asend``/``athrow`` awaitable)
    runs: those have no attribute for it, only a reference the collector can see."""
    if type(step).__name__ not in ("async_generator_asend", "async_generator_athrow"):
        return None
    return next((r for r in gc.get_referents(step) if inspect.isasyncgen(r)), None)
