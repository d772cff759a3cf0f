"""COPYUID (RFC 4315) in UID MOVE and UID COPY responses, as aioimaplib returns them."""

from __future__ import annotations

from services.imap.copyuid import parse_copyuid


def test_move_sends_copyuid_untagged_before_the_expunges() -> None:
    lines = [
        b"OK [COPYUID 1718000000 3:5 10:12] Moved UIDs.",
        b"1 EXPUNGE",
        b"1 EXPUNGE",
        b"1 EXPUNGE",
        b"Move completed (0.002 + 0.000 secs).",
    ]
    got = parse_copyuid(lines)
    assert got is not None
    assert got.uidvalidity == 1718000000
    assert got.uids == {3: 10, 4: 11, 5: 12}


def test_copy_sends_it_in_the_tagged_ok_and_the_sets_pair_in_order() -> None:
    got = parse_copyuid([bytearray(b"[COPYUID 9 7,2:3 20:21,30] Copy completed.")])
    assert got is not None
    assert got.uids == {7: 20, 2: 21, 3: 30}


def test_no_copyuid_or_an_inconsistent_one_says_nothing() -> None:
    assert parse_copyuid([b"Move completed."]) is None
    assert parse_copyuid([b"OK [COPYUID 9 1:3 4:5] Moved UIDs."]) is None
