"""dedup commits an offset only when every event before it was processed.

Driven through faust's own consumer bookkeeping (the same calls its streams make: track
an event handed to an agent, ack it, compute the offset to commit); every case but the
one of an earlier generation's event fails on faust-streaming 0.15.3 as released. See
services/dedup/transport.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from tests.fixtures.faust_app import PART, dedup_app
from tests.fixtures.faust_app import fetched as _fetched


@pytest.fixture
def consumer(tmp_path: Path) -> Any:
    consumer = dedup_app(tmp_path).consumer
    consumer._committed_offset[PART] = 10  # the next event to process is offset 10
    return consumer


def _taken(consumer: Any, message: ConsumerMessage) -> ConsumerMessage:
    """As a stream does when it hands the event to its agent."""
    message.tracked = True
    consumer.track_message(message)
    return message


def test_no_commit_past_an_event_still_in_flight(consumer: Any) -> None:
    # The agent took 10, 11, 12; the records of 11 and 12 reached the broker first.
    first, *rest = (_taken(consumer, _fetched(o)) for o in (10, 11, 12))
    for message in rest:
        message.ack(consumer)
    # faust 0.15.3 commits 13 here: a crash now and 10 is never processed (issue #606).
    assert consumer._new_offset(PART) is None
    first.ack(consumer)
    assert consumer._new_offset(PART) == 13


def test_events_skipped_by_a_rebalance_are_read_again(consumer: Any) -> None:
    # Fetched under generation 2, still queued when generation 3 began: the stream skips
    # them unprocessed, and its skip acks them. Until the seek to the committed offsets
    # sets the head, no committed offset guards it.
    consumer._committed_offset.pop(PART)
    for offset in range(225, 267):
        _fetched(offset, generation=2).ack(consumer)
    assert consumer._new_offset(PART) is None  # faust 0.15.3: 267, and 42 events lost


def test_an_event_taken_in_an_earlier_generation_does_not_hold_commits(consumer: Any) -> None:
    # Taken under generation 2 and never acked; generation 3 reads it again from the
    # committed offset, and that copy is what must be finished first.
    _taken(consumer, _fetched(10, generation=2))
    again = _taken(consumer, _fetched(10))
    again.ack(consumer)
    assert consumer._new_offset(PART) == 11


async def test_records_never_delivered_are_not_committed_as_a_gap(consumer: Any) -> None:
    # After a broker restart faust delivered offset 225, then 267: it takes 226-266 as a
    # gap (what compaction or transaction markers leave), which dedup's input topics,
    # written without transactions, do not have.
    consumer._committed_offset[PART] = 226
    await consumer._add_gap(PART, 226, 267)  # as faust's drain calls it
    _taken(consumer, _fetched(267)).ack(consumer)
    assert consumer._new_offset(PART) is None  # faust 0.15.3: 268, and 41 sightings lost


async def test_records_never_delivered_are_fetched_again(consumer: Any) -> None:
    # The partition is sought back to the first offset not delivered, between batches,
    # so the next fetch brings those records to the agent.
    sought: list[tuple[TP, int]] = []

    async def seek(tp: TP, offset: int) -> None:
        sought.append((tp, offset))

    async def no_records(timeout: float) -> tuple[dict[TP, list[Any]], set[TP]]:
        return {}, {PART}

    consumer.seek, consumer.assignment = seek, lambda: {PART}
    consumer._wait_next_records = no_records
    await consumer._add_gap(PART, 230, 267)
    await consumer._add_gap(PART, 226, 229)  # an earlier hole of the same partition
    assert [m async for m in consumer.getmany(1.0)] == []
    assert sought == [(PART, 226)]
    assert [m async for m in consumer.getmany(1.0)] == [] and sought == [(PART, 226)]
