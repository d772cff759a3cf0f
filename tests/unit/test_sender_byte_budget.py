"""The sender's budget of bytes in hand: large messages wait their turn, none for ever."""

from __future__ import annotations

import asyncio
import datetime as dt

from schemas.common import Address, BlobRef
from schemas.send_request import OutboundAttachment, SendRequest
from services.sender.byte_budget import HEADERS_BYTES, ByteBudget, bytes_in_hand


async def _holding(budget: ByteBudget, size: int, release: asyncio.Event, log: list[int]) -> None:
    async with budget.hold(size):
        log.append(size)
        await release.wait()


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_what_does_not_fit_waits_until_enough_is_given_back() -> None:
    budget, log = ByteBudget(100), list[int]()
    first, second = asyncio.Event(), asyncio.Event()
    a = asyncio.create_task(_holding(budget, 60, first, log))
    b = asyncio.create_task(_holding(budget, 60, second, log))
    await _settle()
    assert log == [60] and budget.used == 60
    first.set()
    await _settle()
    assert log == [60, 60] and budget.used == 60
    second.set()
    await asyncio.gather(a, b)
    assert budget.used == 0


async def test_a_message_larger_than_the_budget_goes_alone() -> None:
    budget, log = ByteBudget(100), list[int]()
    small_done, large_done = asyncio.Event(), asyncio.Event()
    small = asyncio.create_task(_holding(budget, 10, small_done, log))
    large = asyncio.create_task(_holding(budget, 500, large_done, log))
    await _settle()
    assert log == [10]  # the large one waits for the budget to be all free...
    small_done.set()
    await _settle()
    assert log == [10, 500] and budget.used == 500  # ...then goes, alone
    large_done.set()
    await asyncio.gather(small, large)


async def test_a_large_message_waiting_is_not_overtaken_by_small_ones() -> None:
    budget, log = ByteBudget(100), list[int]()
    events = [asyncio.Event() for _ in range(3)]
    tasks = [asyncio.create_task(_holding(budget, 50, events[0], log))]
    await _settle()
    tasks.append(asyncio.create_task(_holding(budget, 90, events[1], log)))
    await _settle()
    tasks.append(asyncio.create_task(_holding(budget, 10, events[2], log)))
    await _settle()
    assert log == [50]  # 10 would fit beside 50, but 90 asked first
    events[0].set()
    await _settle()
    assert log == [50, 90, 10]
    for e in events:
        e.set()
    await asyncio.gather(*tasks)
    assert budget.used == 0


async def test_a_request_cancelled_while_waiting_leaves_the_budget_as_it_was() -> None:
    budget, log = ByteBudget(100), list[int]()
    hold, never = asyncio.Event(), asyncio.Event()
    a = asyncio.create_task(_holding(budget, 80, hold, log))
    await _settle()
    b = asyncio.create_task(_holding(budget, 80, never, log))
    c = asyncio.create_task(_holding(budget, 20, hold, log))
    await _settle()
    b.cancel()
    await _settle()
    assert log == [80, 20] and budget.used == 100  # c no longer waits behind b
    hold.set()
    await asyncio.gather(a, c)
    assert b.cancelled() and budget.used == 0


def test_a_message_weighs_its_attachments_in_base64_and_its_bodies() -> None:
    request = SendRequest(
        request_id="req-00000001",
        account_id="info",
        sender=Address(address="info@example.com"),
        requested_by="petr",
        to=(Address(address="zakaznik@example.net"),),
        subject="Faktura",
        text_body="Dobrý den",
        attachments=(
            OutboundAttachment(
                filename="faktura.pdf",
                content_type="application/pdf",
                blob=BlobRef(sha256="0" * 64, size=3_000_000),
            ),
        ),
        requested_at=dt.datetime(2026, 12, 6, tzinfo=dt.UTC),
    )
    assert bytes_in_hand(request) == 4_000_000 + 4 * len("Dobrý den") + HEADERS_BYTES


async def test_bytes_given_back_as_the_next_in_line_is_cancelled_go_to_the_one_after() -> None:
    budget, log = ByteBudget(100), list[int]()
    release, never, later = asyncio.Event(), asyncio.Event(), asyncio.Event()
    a = asyncio.create_task(_holding(budget, 80, release, log))
    await _settle()
    b = asyncio.create_task(_holding(budget, 80, never, log))
    c = asyncio.create_task(_holding(budget, 30, later, log))
    await _settle()
    release.set()  # A gives its bytes back in the same turn of the loop as B is cancelled
    b.cancel()
    await _settle()
    assert log == [80, 30] and budget.used == 30
    later.set()
    await asyncio.gather(a, c)
    assert b.cancelled() and budget.used == 0
