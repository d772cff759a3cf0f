"""An event is acked only once its output record is in the broker."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from services.dedup.acks import ack_when_sent


@dataclass
class Message:
    topic: str = "raw"
    partition: int = 0
    offset: int = 7


@dataclass
class Event:
    """What ack_when_sent uses of a faust Event: ``ack()`` and ``message``."""

    message: Message = field(default_factory=Message)
    acks: int = 0

    def ack(self) -> bool:
        self.acks += 1
        return True


async def test_acked_when_the_send_succeeds_not_before() -> None:
    event, crashes = Event(), list[BaseException]()
    sent: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    ack_when_sent(event, sent, crashes.append)
    await asyncio.sleep(0)
    assert event.acks == 0  # still in flight
    sent.set_result(object())
    await asyncio.sleep(0)
    assert (event.acks, crashes) == (1, [])


async def test_a_failed_send_is_not_acked_and_crashes_the_worker() -> None:
    event, crashes = Event(), list[BaseException]()
    sent: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    ack_when_sent(event, sent, crashes.append)
    error = OSError("broker gone")
    sent.set_exception(error)
    await asyncio.sleep(0)
    assert event.acks == 0
    assert crashes == [error]


async def test_a_cancelled_send_is_not_acked() -> None:
    event, crashes = Event(), list[BaseException]()
    sent: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    ack_when_sent(event, sent, crashes.append)
    sent.cancel()
    await asyncio.sleep(0)
    assert (event.acks, crashes) == (0, [])


async def test_acked_once_every_output_record_is_sent() -> None:
    event, crashes = Event(), list[BaseException]()
    loop = asyncio.get_running_loop()
    tagged: asyncio.Future[object] = loop.create_future()
    changelog: asyncio.Future[object] = loop.create_future()
    ack_when_sent(event, [tagged, changelog], crashes.append)
    tagged.set_result(object())
    await asyncio.sleep(0)
    assert event.acks == 0  # the changelog record is still in flight
    changelog.set_result(object())
    await asyncio.sleep(0)
    assert (event.acks, crashes) == (1, [])


async def test_one_failed_record_of_several_crashes_once_and_is_not_acked() -> None:
    event, crashes = Event(), list[BaseException]()
    loop = asyncio.get_running_loop()
    sent: list[asyncio.Future[object]] = [loop.create_future() for _ in range(3)]
    ack_when_sent(event, sent, crashes.append)
    error = OSError("broker gone")
    sent[0].set_exception(error)
    sent[1].set_exception(OSError("again"))
    sent[2].set_result(object())
    await asyncio.sleep(0)
    assert (event.acks, crashes) == (0, [error])
