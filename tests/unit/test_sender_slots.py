"""Requests claimed ahead wait for a slot; a freed slot goes round the accounts."""

from __future__ import annotations

import asyncio

import pytest

from services.sender.slots import FairSlots


async def _queue(slots: FairSlots, account: str, started: list[str], go: asyncio.Event) -> None:
    async with slots.hold(account):
        started.append(account)
        await go.wait()


async def test_a_quiet_accounts_request_takes_the_next_slot_before_a_busy_ones_queue() -> None:
    slots = FairSlots(2)
    started: list[str] = []
    gates = [asyncio.Event() for _ in range(6)]
    busy = [asyncio.create_task(_queue(slots, "busy", started, gates[i])) for i in range(5)]
    await asyncio.sleep(0)
    quiet = asyncio.create_task(_queue(slots, "quiet", started, gates[5]))
    await asyncio.sleep(0)
    assert started == ["busy", "busy"]  # two slots, both taken; four waiting behind them
    gates[0].set()
    await asyncio.sleep(0.01)
    assert started == ["busy", "busy", "quiet"]
    assert slots.at_work() == {"busy": 1, "quiet": 1}
    for gate in gates:
        gate.set()
    await asyncio.gather(*busy, quiet)
    assert started.count("busy") == 5 and slots.at_work() == {}


async def test_a_busy_account_alone_gets_every_slot_in_the_order_it_waited() -> None:
    slots = FairSlots(3)
    order: list[int] = []

    async def one(n: int) -> None:
        async with slots.hold("only"):
            order.append(n)
            await asyncio.sleep(0.001)

    await asyncio.gather(*(one(n) for n in range(10)))
    assert order == list(range(10))


async def test_a_cancelled_waiter_gives_up_its_place_and_never_leaks_a_slot() -> None:
    slots = FairSlots(1)
    go = asyncio.Event()
    started: list[str] = []
    holder = asyncio.create_task(_queue(slots, "a", started, go))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(_queue(slots, "b", started, go))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    go.set()
    await holder
    # Granted a slot and cancelled before it ran: the slot comes back too.
    held = slots.hold("a")
    await held.__aenter__()
    second = asyncio.create_task(_queue(slots, "b", started, go))
    await asyncio.sleep(0)
    await held.__aexit__(None, None, None)  # grants the slot to second, which has not run
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    assert slots.at_work() == {}
    async with slots.hold("c"):
        assert slots.at_work() == {"c": 1}
    assert started == ["a"]


async def test_a_slot_given_back_early_goes_to_the_next_and_is_not_freed_twice() -> None:
    slots = FairSlots(1)
    started: list[str] = []
    go = asyncio.Event()
    async with slots.hold("a") as let_go:
        waiting = asyncio.create_task(_queue(slots, "b", started, go))
        await asyncio.sleep(0)
        assert started == []  # the one slot is ours
        let_go()
        let_go()  # once only
        await asyncio.sleep(0)
        assert started == ["b"] and slots.at_work() == {"b": 1}
    assert slots.at_work() == {"b": 1}  # leaving the block freed nothing more
    third = asyncio.create_task(_queue(slots, "c", started, go))
    await asyncio.sleep(0)
    assert started == ["b"]  # still one slot, b's
    go.set()
    await asyncio.gather(waiting, third)
    assert started == ["b", "c"] and slots.at_work() == {}
