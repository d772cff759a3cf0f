"""How a folder's cursor moves: every write is one advance()."""

from __future__ import annotations

import datetime as dt

from schemas.common import FolderRole
from schemas.mailbox_state import FolderCursor
from services.fetcher.cursor_rules import (
    MovedAway,
    PassDone,
    Position,
    Published,
    Renumbered,
    advance,
)
from services.fetcher.sync import has_changes
from services.imap.folder_status import FolderStatus
from services.imap.sequence_set import uid_set

NOW = dt.datetime(2026, 11, 23, 16, 0, tzinfo=dt.UTC)


def cursor(
    uids: list[int],
    *,
    uidvalidity: int = 100,
    last_uid: int | None = None,
    missing: tuple[int, ...] = (),
    highestmodseq: int | None = 50,
    exists: int = 10,
) -> FolderCursor:
    return FolderCursor(  # type: ignore[call-arg]  # by its alias, _id, as stored
        _id="acc/INBOX",
        account_id="acc",
        folder="INBOX",
        folder_role=FolderRole.INBOX,
        uidvalidity=uidvalidity,
        last_uid=max(uids, default=0) if last_uid is None else last_uid,
        highestmodseq=highestmodseq,
        exists=exists,
        uids=uid_set(uids),
        missing_uids=missing,
        updated_at=NOW,
    )


def status(
    uidvalidity: int = 100, exists: int = 12, highestmodseq: int | None = 60
) -> FolderStatus:
    return FolderStatus(
        uidvalidity=uidvalidity, uidnext=99, exists=exists, highestmodseq=highestmodseq
    )


def test_a_batch_adds_what_it_published_and_keeps_the_flag_state() -> None:
    prev = cursor([1, 2, 3])
    after = advance(prev, status(), Published(frozenset({4, 5}), missing=(6,)))
    assert after == Position(
        uidvalidity=100,
        last_uid=5,
        uids=frozenset({1, 2, 3, 4, 5}),
        missing=(6,),
        highestmodseq=50,  # the last completed pass's, not the server's 60
        exists=10,
    )


def test_a_first_batch_takes_the_servers_modseq_and_counts_nothing_yet() -> None:
    after = advance(None, status(), Published(frozenset({1, 2}), missing=()))
    assert after is not None
    assert (after.last_uid, after.highestmodseq, after.exists) == (2, 60, 0)


def test_a_pass_drops_what_left_adds_what_it_fetched_and_takes_the_flag_state() -> None:
    prev = cursor([1, 2, 3, 4], missing=(7,))
    after = advance(prev, status(), PassDone(frozenset({5, 6}), frozenset({2}), missing=()))
    assert after == Position(
        uidvalidity=100,
        last_uid=6,
        uids=frozenset({1, 3, 4, 5, 6}),
        missing=(),
        highestmodseq=60,
        exists=12,
    )


def test_a_pass_over_an_emptied_folder_holds_nothing_and_keeps_its_place() -> None:
    after = advance(cursor([1, 2]), status(exists=0), PassDone(frozenset(), frozenset({1, 2}), ()))
    assert after is not None
    # UIDs are never reused (RFC 3501 2.3.1.1): new mail comes after 2, not after 0.
    assert (after.uids, after.last_uid, after.exists) == (frozenset(), 2, 0)


def test_once_the_newest_message_left_the_next_poll_finds_nothing_to_do() -> None:
    # The newest message (3) was moved to Trash as processed mail, then a pass ran.
    now = FolderStatus(uidvalidity=100, uidnext=4, exists=2, highestmodseq=60)
    after = advance(cursor([1, 2, 3]), now, PassDone(frozenset(), frozenset({3}), ()))
    assert after is not None and after.last_uid == 3
    stored = cursor(sorted(after.uids), last_uid=after.last_uid, exists=2, highestmodseq=60)
    assert not has_changes(stored, now)
    # New mail is still seen.
    assert has_changes(stored, FolderStatus(uidvalidity=100, uidnext=5, exists=3, highestmodseq=61))


def test_a_cursor_of_another_uidvalidity_holds_nothing_of_this_numbering() -> None:
    prev = cursor([1, 2, 3], uidvalidity=7)
    after = advance(prev, status(), PassDone(frozenset({10}), frozenset(), ()))
    assert after is not None
    assert (after.uidvalidity, after.uids) == (100, frozenset({10}))


def test_renumbered_holds_the_new_uids_and_compares_flags_afresh() -> None:
    prev = cursor([1, 2, 3], uidvalidity=7)
    after = advance(prev, status(), Renumbered(frozenset({11, 12, 14}), refetch=(13,)))
    assert after == Position(
        uidvalidity=100,
        last_uid=14,
        uids=frozenset({11, 12, 14}),
        missing=(13,),
        highestmodseq=None,
        exists=3,
    )


def test_a_move_of_ours_forgets_the_uids_and_keeps_the_rest() -> None:
    prev = cursor([1, 2, 3, 4], missing=(9,), exists=4)
    after = advance(prev, status(), MovedAway(frozenset({2, 4})))
    assert after == Position(
        uidvalidity=100,
        last_uid=4,  # UIDs only grow: nothing new can lie below it
        uids=frozenset({1, 3}),
        missing=(9,),
        highestmodseq=50,
        exists=2,
    )


def test_a_move_never_counts_below_zero() -> None:
    after = advance(cursor([1, 2], exists=1), status(), MovedAway(frozenset({1, 2})))
    assert after is not None
    assert after.exists == 0


def test_a_move_out_of_a_folder_not_synced_or_renumbered_writes_nothing() -> None:
    moved = MovedAway(frozenset({1}))
    assert advance(None, status(), moved) is None
    assert advance(cursor([1], uidvalidity=7), status(), moved) is None
