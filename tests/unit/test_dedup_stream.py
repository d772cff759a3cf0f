"""dedup's agents' streams hand over the queued events as faust's would, without a pass
of the event loop before each one (services/dedup/stream.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from faust.events import Event

from services.dedup.stream import YIELD_EVERY, EventStream
from tests.fixtures.faust_app import GENERATION, dedup_app, fetched


@pytest.fixture
def app(tmp_path: Path) -> Any:
    app = dedup_app(tmp_path)
    app.flow_control.resume()  # as faust does once partitions are assigned
    return app


def _queue(app: Any, stream: Any, offsets: range, generation: int = GENERATION) -> list[Event]:
    """Events fetched under ``generation``, queued for the stream as the conductor does."""
    events = []
    for offset in offsets:
        events.append(Event(app, b"k", b"v", [], fetched(offset, generation)))
    for event in events:
        stream.channel.queue.put_nowait(event)
    return events


async def _take(stream: Any, n: int) -> list[tuple[int, bool, Any]]:
    """(offset, tracked as unacked, the stream's current event) of the next ``n`` events."""
    seen = []
    async for event in stream.events():
        unacked = event.message in stream.app.consumer._unacked_messages
        seen.append((event.message.offset, unacked, stream.current_event))
        if len(seen) == n:
            break
    return seen


async def test_events_come_in_order_tracked_and_current(app: Any) -> None:
    stream = app.stream(app.channel()).noack()
    assert isinstance(stream, EventStream)
    events = _queue(app, stream, range(10, 13))
    seen = await _take(stream, 3)
    assert seen == [(e.message.offset, True, e) for e in events]


async def test_events_a_rebalance_caught_are_skipped_and_not_acked(app: Any) -> None:
    stream = app.stream(app.channel()).noack()
    stale = _queue(app, stream, range(10, 12), generation=2)
    _queue(app, stream, range(10, 12))  # read again from the committed offset
    assert [offset for offset, _, _ in await _take(stream, 2)] == [10, 11]
    assert not any(e.message.tracked or e.message.acked for e in stale)


async def test_other_tasks_run_while_a_long_queue_is_taken(app: Any) -> None:
    stream = app.stream(app.channel()).noack()
    _queue(app, stream, range(3 * YIELD_EVERY))
    ran = asyncio.Event()
    asyncio.get_running_loop().call_soon(ran.set)
    taken_before = 0
    async for _ in stream.events():
        if ran.is_set():
            break
        taken_before += 1
    assert ran.is_set() and taken_before <= YIELD_EVERY


async def test_queued_events_are_taken_without_a_loop_pass_each(app: Any) -> None:
    # faust's own iterator passes through the event loop before every event.
    stream = app.stream(app.channel()).noack()
    _queue(app, stream, range(YIELD_EVERY))
    loop, passes, counting = asyncio.get_running_loop(), 0, True

    def tick() -> None:
        nonlocal passes
        passes += 1
        if counting:
            loop.call_soon(tick)

    loop.call_soon(tick)
    assert len(await _take(stream, YIELD_EVERY)) == YIELD_EVERY
    counting = False
    assert passes <= 1
