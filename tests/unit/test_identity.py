"""A message's identity: which copies sharing a Message-ID are one message (issue 15)."""

from __future__ import annotations

from services.mail.headers import parse_headers
from services.mail.identity import identify


def raw(
    subject: str = "Quarterly report",
    *,
    sender: str = "Anna <anna@example.cz>",
    date: str = "Mon, 23 Nov 2026 16:15:18 +0000",
    message_id: str = "<q1@example.cz>",
    body: str = "Numbers attached.\r\n",
    extra: str = "",
) -> bytes:
    return (
        f"Message-ID: {message_id}\r\nFrom: {sender}\r\nTo: bob@example.cz\r\n"
        f"Subject: {subject}\r\nDate: {date}\r\n{extra}\r\n{body}"
    ).encode()


def activity(message: bytes) -> str:
    return identify(parse_headers(message), message).activity_id


def test_a_list_copy_with_a_tag_and_a_footer_is_the_same_message() -> None:
    listed = raw(
        "[sales] Quarterly report",
        body="Numbers attached.\r\n--\r\nsales mailing list\r\n",
        extra="List-Id: <sales.example.cz>\r\nSender: sales-bounces@example.cz\r\n",
    )
    assert activity(listed) == activity(raw())


def test_reply_prefixes_case_and_date_spelling_do_not_make_another_message() -> None:
    same = raw("RE:  quarterly   REPORT", date="23 Nov 2026 17:15:18 +0100")
    assert activity(same) == activity(raw("Re: Quarterly report"))


def test_whitespace_inside_the_brackets_is_not_part_of_the_id() -> None:
    spaced = parse_headers(raw(message_id="< ODD.Case.Id@Example.TEST >"))
    assert spaced.message_id == "ODD.Case.Id@Example.TEST"
    assert identify(spaced, b"").fingerprint == "mid:ODD.Case.Id@example.test"


def test_another_sender_date_or_subject_under_one_message_id_is_another_activity() -> None:
    base = activity(raw())
    others = {
        activity(raw(sender="eva@example.cz")),
        activity(raw(date="Tue, 24 Nov 2026 16:15:18 +0000")),
        activity(raw("Invoice 7")),
    }
    assert base not in others and len(others) == 3
    fps = {identify(parse_headers(m), m).fingerprint for m in (raw(), raw("Invoice 7"))}
    assert fps == {"mid:q1@example.cz"}  # one fingerprint: dedup sees them together
