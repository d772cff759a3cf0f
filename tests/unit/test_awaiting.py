"""services.common.awaiting: where a task that will not end is waiting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator


async def test_names_every_coroutine_down_to_the_innermost_through_an_async_for() -> None:
    from services.common.awaiting import awaiting

    never = asyncio.Event()

    async def wait_for_the_server() -> None:
        await never.wait()

    async def messages() -> AsyncIterator[int]:
        await wait_for_the_server()
        yield 1

    async def account() -> None:
        async for _ in messages():
            pass

    task = asyncio.create_task(account())
    await asyncio.sleep(0)
    where = awaiting(task)
    names = [line.rsplit(" in ", 1)[-1] for line in where[:-1]]
    assert names == ["account", "messages", "wait_for_the_server", "wait"]
    assert where[0].startswith(__file__)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert awaiting(task) == []  # ended: nothing left to wait in
