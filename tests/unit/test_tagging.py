"""Which alias a sighting reached, and which way the message went."""

from __future__ import annotations

import datetime as dt

import pytest

from schemas.account import AccountRecord, Endpoint, PersonalOwnership, SharedOwnership
from schemas.common import Direction, FolderRole
from services.dedup.tagging import account_tag, base_address, direction, match_alias
from services.mail.headers import Headers, parse_headers

NOW = dt.datetime(2026, 11, 23, 16, 0, tzinfo=dt.UTC)


def personal(address: str, *aliases: str, owner: str = "u-jan") -> AccountRecord:
    return AccountRecord(
        account_id=address.split("@")[0],
        address=address,
        aliases=aliases,
        ownership=PersonalOwnership(owner=owner),
        imap=Endpoint(host="imap.firma.cz", port=993, username=address),
        updated_at=NOW,
    )


def shared(address: str, *aliases: str, group: str = "sales") -> AccountRecord:
    return AccountRecord(
        account_id=address.split("@")[0],
        address=address,
        aliases=aliases,
        ownership=SharedOwnership(group=group),
        imap=Endpoint(host="imap.firma.cz", port=993, username=address),
        updated_at=NOW,
    )


JAN = personal("jan@firma.cz", "Jan.Novak@Firma.CZ")
INFO = shared("info@firma.cz", "sales@firma.cz", "podpora@firma.cz")
SYNCED = frozenset(
    {"jan@firma.cz", "jan.novak@firma.cz", "info@firma.cz", "sales@firma.cz", "podpora@firma.cz"}
)


def hdrs(*lines: str) -> Headers:
    return parse_headers(("\r\n".join(lines) + "\r\n\r\nbody").encode())


@pytest.mark.parametrize(
    ("address", "base"),
    [
        ("User+tag@Example.COM", "user@example.com"),
        ("user@example.com", "user@example.com"),
        ("  Jan.Novak@Firma.CZ ", "jan.novak@firma.cz"),
        ("a+b+c@x.cz", "a@x.cz"),
        ("no-at-sign", "no-at-sign"),
    ],
)
def test_base_address(address: str, base: str) -> None:
    assert base_address(address) == base


def test_account_tag_personal() -> None:
    tag = account_tag(JAN)
    assert (tag.account_id, tag.kind, tag.owner, tag.group) == ("jan", "personal", "u-jan", None)


def test_account_tag_shared() -> None:
    tag = account_tag(INFO)
    assert (tag.account_id, tag.kind, tag.owner, tag.group) == ("info", "shared", None, "sales")


def test_x_original_to_alias_wins_over_delivered_to_main_address() -> None:
    h = hdrs(
        "From: customer@example.com",
        "To: team@lists.example.org",
        "Delivered-To: info@firma.cz",
        "X-Original-To: sales@firma.cz",
    )
    assert match_alias(INFO, h, FolderRole.INBOX) == "sales@firma.cz"


def test_x_original_to_comes_before_to() -> None:
    h = hdrs(
        "From: customer@example.com",
        "To: info@firma.cz",
        "X-Original-To: podpora@firma.cz",
    )
    assert match_alias(INFO, h, FolderRole.INBOX) == "podpora@firma.cz"


def test_to_comes_before_delivered_to() -> None:
    h = hdrs("From: customer@example.com", "To: sales@firma.cz", "Delivered-To: info@firma.cz")
    assert match_alias(INFO, h, FolderRole.INBOX) == "sales@firma.cz"


def test_cc_match() -> None:
    h = hdrs("From: customer@example.com", "To: other@example.com", "Cc: Jan.Novak@Firma.cz")
    assert match_alias(JAN, h, FolderRole.INBOX) == "jan.novak@firma.cz"


def test_subaddress_matches_the_base_address() -> None:
    h = hdrs("From: customer@example.com", "To: jan+crm@firma.cz")
    assert match_alias(JAN, h, FolderRole.INBOX) == "jan@firma.cz"


def test_bcc_is_found_through_delivered_to() -> None:
    h = hdrs("From: customer@example.com", "To: other@example.com", "Delivered-To: info@firma.cz")
    assert match_alias(INFO, h, FolderRole.INBOX) == "info@firma.cz"


def test_no_address_of_the_account() -> None:
    h = hdrs("From: customer@example.com", "To: other@example.com")
    assert match_alias(JAN, h, FolderRole.INBOX) is None


def test_sent_folder_gives_the_sender_address() -> None:
    h = hdrs("From: Jan Novák <jan.novak@firma.cz>", "To: customer@example.com")
    assert match_alias(JAN, h, FolderRole.SENT) == "jan.novak@firma.cz"


def test_sent_folder_sender_wins_over_recipients() -> None:
    h = hdrs("From: jan@firma.cz", "To: jan.novak@firma.cz")
    assert match_alias(JAN, h, FolderRole.SENT) == "jan@firma.cz"


def test_sent_folder_with_a_foreign_sender_has_no_alias() -> None:
    h = hdrs("From: someone@example.com", "To: jan@firma.cz")
    assert match_alias(JAN, h, FolderRole.SENT) is None


def test_own_message_outside_the_sent_folder_gives_the_sender_address() -> None:
    h = hdrs("From: jan.novak@firma.cz", "To: customer@example.com")
    assert match_alias(JAN, h, FolderRole.ARCHIVE) == "jan.novak@firma.cz"


def test_alias_is_returned_lowercased() -> None:
    account = shared("Info@Firma.CZ", "Sales@Firma.CZ")
    h = hdrs("From: customer@example.com", "To: SALES@firma.cz")
    assert match_alias(account, h, FolderRole.INBOX) == "sales@firma.cz"


def test_exact_address_wins_over_a_subaddress_alias() -> None:
    account = personal("jan@firma.cz", "jan+crm@firma.cz")
    h = hdrs("From: customer@example.com", "To: jan@firma.cz")
    assert match_alias(account, h, FolderRole.INBOX) == "jan@firma.cz"


def test_inbound() -> None:
    h = hdrs("From: customer@example.com", "To: info@firma.cz")
    assert direction(INFO, h, FolderRole.INBOX, SYNCED) is Direction.INBOUND


def test_outbound_from_the_sent_folder() -> None:
    h = hdrs("From: jan@firma.cz", "To: customer@example.com")
    assert direction(JAN, h, FolderRole.SENT, SYNCED) is Direction.OUTBOUND


def test_outbound_from_an_alias_with_a_subaddress_outside_sent() -> None:
    h = hdrs("From: Jan.Novak+x@firma.cz", "To: customer@example.com")
    assert direction(JAN, h, FolderRole.ARCHIVE, SYNCED) is Direction.OUTBOUND


def test_sent_folder_is_outbound_whoever_the_sender() -> None:
    h = hdrs("From: assistant@example.com", "To: customer@example.com")
    assert direction(JAN, h, FolderRole.SENT, SYNCED) is Direction.OUTBOUND


def test_internal_between_synced_accounts() -> None:
    h = hdrs("From: jan@firma.cz", "To: info@firma.cz", "Cc: Sales+x@Firma.cz")
    assert direction(INFO, h, FolderRole.INBOX, SYNCED) is Direction.INTERNAL
    assert direction(JAN, h, FolderRole.SENT, SYNCED) is Direction.INTERNAL


def test_one_external_recipient_makes_it_not_internal() -> None:
    h = hdrs("From: jan@firma.cz", "To: info@firma.cz", "Cc: customer@example.com")
    assert direction(JAN, h, FolderRole.SENT, SYNCED) is Direction.OUTBOUND
    assert direction(INFO, h, FolderRole.INBOX, SYNCED) is Direction.INBOUND


def test_external_sender_to_synced_addresses_is_inbound() -> None:
    h = hdrs("From: customer@example.com", "To: info@firma.cz, jan@firma.cz")
    assert direction(JAN, h, FolderRole.INBOX, SYNCED) is Direction.INBOUND


def test_no_visible_recipients_is_not_internal() -> None:
    h = hdrs("From: jan@firma.cz", "Delivered-To: info@firma.cz")
    assert direction(JAN, h, FolderRole.SENT, SYNCED) is Direction.OUTBOUND
    assert direction(INFO, h, FolderRole.INBOX, SYNCED) is Direction.INBOUND


def test_no_sender_is_inbound() -> None:
    h = hdrs("To: info@firma.cz")
    assert direction(INFO, h, FolderRole.INBOX, SYNCED) is Direction.INBOUND
