"""UIDVALIDITY changed: same messages renumbered, or another folder."""

from __future__ import annotations

from services.fetcher.revalidate import (
    UidValidityVerdict,
    message_key,
    refetch_after_remap,
    revalidate,
)


def test_same_messages_renumbered_are_remapped_in_order() -> None:
    stored = {1: "a@x", 2: "b@x", 5: "c@x"}
    listed: dict[int, str | None] = {1: "a@x", 2: "b@x", 3: "c@x"}
    result = revalidate(stored, listed)
    assert result.verdict is UidValidityVerdict.SAME
    assert result.remap == {1: 1, 2: 2, 5: 3}
    assert result.compared == 3


def test_new_mail_in_the_renumbered_folder_does_not_make_it_another_folder() -> None:
    result = revalidate({10: "a@x"}, {1: "a@x", 2: "new@x", 3: None})
    assert result.verdict is UidValidityVerdict.SAME
    assert result.remap == {10: 1}


def test_a_stored_message_missing_means_the_folder_was_replaced() -> None:
    result = revalidate({1: "a@x", 2: "b@x"}, {1: "a@x", 2: "other@x"})
    assert result.verdict is UidValidityVerdict.REPLACED
    assert result.remap == {}


def test_nothing_to_compare_is_no_proof_of_sameness() -> None:
    assert revalidate({}, {1: "a@x"}).verdict is UidValidityVerdict.REPLACED
    assert revalidate({1: "a@x"}, {}).verdict is UidValidityVerdict.REPLACED


def test_a_message_filed_twice_must_be_there_twice() -> None:
    twice = {1: "a@x", 2: "a@x"}
    assert revalidate(twice, {7: "a@x"}).verdict is UidValidityVerdict.REPLACED
    result = revalidate(twice, {7: "a@x", 9: "a@x"})
    assert result.verdict is UidValidityVerdict.SAME
    assert result.remap == {1: 7, 2: 9}


def test_unmatched_uids_inside_the_synced_range_are_refetched() -> None:
    listed: dict[int, str | None] = {1: None, 2: "a@x", 3: None, 4: "b@x", 5: "new@x"}
    # 1 lies below what we synced (outside the import window), 5 above (new mail).
    assert refetch_after_remap(listed, {8: 2, 9: 4}) == [3]
    assert refetch_after_remap(listed, {}) == []


def test_message_key_is_the_id_dedup_stores_the_activity_under() -> None:
    block = b"Message-ID: <Abc.1@EXAMPLE.com>\r\n\r\n"
    assert message_key(block) == "Abc.1@example.com"
    forwarded = b"Message-ID: <f@relay.example>\r\nX-Original-Message-ID: <o@a.example>\r\n\r\n"
    assert message_key(forwarded) == "o@a.example"
    assert message_key(b"\r\n") is None
