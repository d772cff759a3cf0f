"""Which sent messages are filed together, and the one SEARCH that looks for them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from services.imap import uid_list
from services.sender.file_batches import search_any, take_batch

AT = dt.datetime(2026, 12, 6, 0, 30, tzinfo=dt.UTC)


@dataclass(frozen=True)
class P:
    message_id: str
    message: bytes = b"x" * 10
    sent_at: dt.datetime = AT


def test_a_batch_is_the_oldest_waiting_up_to_its_count() -> None:
    waiting = [P(f"<{n}@x>") for n in range(5)]
    batch, rest = take_batch(waiting, max_messages=3)
    assert batch == waiting[:3] and rest == waiting[3:]


def test_a_batch_stops_at_its_bytes_but_a_large_message_goes_alone() -> None:
    small, large = P("<s@x>", b"x" * 60), P("<l@x>", b"x" * 500)
    assert take_batch([small, small.__class__("<t@x>", b"x" * 60)], max_bytes=100) == (
        [small],
        [P("<t@x>", b"x" * 60)],
    )
    assert take_batch([large, small], max_bytes=100) == ([large], [small])


def test_one_message_id_twice_waits_for_the_next_batch() -> None:
    a, b, again = P("<a@x>"), P("<b@x>"), P("<a@x>", b"y")
    assert take_batch([a, again, b]) == ([a, b], [again])


def test_one_search_matches_any_of_the_batch_since_the_day_before_the_earliest() -> None:
    ids = ["<a@x>", "<b@x>", '<c"q@x>']
    assert search_any(ids, AT - dt.timedelta(days=3)) == (
        'SINCE 2-Dec-2026 OR OR HEADER Message-ID "<a@x>" HEADER Message-ID "<b@x>" '
        'HEADER Message-ID "<c\\"q@x>"'
    )
    assert search_any(ids[:1], AT) == 'SINCE 5-Dec-2026 HEADER Message-ID "<a@x>"'


def test_appenduid_names_a_multiappends_uids_in_order() -> None:
    assert uid_list("101:103") == [101, 102, 103]
    assert uid_list("7,3:2,9") == [7, 2, 3, 9]
