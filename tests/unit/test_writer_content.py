"""What the activity shows of a message: safe HTML, text, attachments, threads (pure)."""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from schemas.common import Direction, FolderRole, MessageLocation
from schemas.raw_message import RawMessageMeta
from schemas.tagged_message import AccountTag, TaggedMessageMeta
from services.activity_writer.attachments import safe_filename
from services.activity_writer.html import html_to_text, sanitize_html
from services.activity_writer.mapping import to_activity
from services.activity_writer.threads import subject_key, thread_for, thread_id_of
from services.mail.subject import normalise_subject

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


def test_scripts_handlers_and_javascript_urls_are_removed() -> None:
    out = sanitize_html(
        '<p onclick="steal()">Hi<script>alert(1)</script>'
        '<a href="javascript:alert(2)" onmouseover="x()">link</a>'
        '<iframe src="https://evil.example"></iframe></p>'
    )
    assert "script" not in out.html and "alert" not in out.html
    assert "onclick" not in out.html and "onmouseover" not in out.html
    assert "javascript:" not in out.html and "iframe" not in out.html
    assert "Hi" in out.html and "link" in out.html


def test_remote_images_are_not_loaded_but_inline_ones_are() -> None:
    out = sanitize_html(
        '<img src="https://track.example/p.gif?u=1"><img src="//cdn.example/a.png">'
        '<img src="cid:logo@x"><table><tr><td background="http://bg.example/b.png">x</td>'
        '<td style="background:url(http://css.example/c.png)">y</td></tr></table>'
    )
    for host in ("track.example", "cdn.example", "bg.example", "css.example"):
        assert host not in out.html
    assert 'src="cid:logo@x"' in out.html
    assert out.remote_images_blocked == 2


def test_html_to_text_keeps_line_breaks_and_decodes_entities() -> None:
    assert html_to_text("<p>Dobr&yacute; den,</p><p>děkuji<br>Jana</p>").split() == [
        "Dobrý",
        "den,",
        "děkuji",
        "Jana",
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\run.exe", "run.exe"),
        ("faktura 2026/11.pdf", "11.pdf"),
        ("a\x00b\r\n.txt", "a_b_.txt"),
        ("", "attachment.pdf"),
        (None, "attachment.pdf"),
        ("Angebot Nr. 4711.pdf", "Angebot Nr. 4711.pdf"),
    ],
)
def test_safe_filename(name: str | None, expected: str) -> None:
    assert safe_filename(name, "application/pdf") == expected


def test_long_filename_keeps_its_extension() -> None:
    out = safe_filename("x" * 500 + ".pdf")
    assert len(out) == 200 and out.endswith(".pdf")


def test_reply_joins_a_known_parent_thread_even_without_references() -> None:
    known = {"orig@x": "t-parent"}
    assert thread_for("re@y", "orig@x", (), known, "a") == "t-parent"


def test_replies_agree_on_the_root_before_the_root_is_seen() -> None:
    one = thread_for("r1@y", "root@x", ("root@x",), {}, "a")
    two = thread_for("r2@z", "r1@y", ("root@x", "r1@y"), {}, "b")
    assert one == two == thread_id_of("root@x")


def test_a_message_without_parents_starts_its_own_thread() -> None:
    assert thread_for("solo@x", None, (), {}, "a") == thread_id_of("solo@x")
    assert thread_for(None, None, (), {}, "act-1") == thread_id_of("act-1")


def _meta(fp: str) -> TaggedMessageMeta:
    raw = RawMessageMeta(
        location=MessageLocation(account_id="acc", folder="INBOX", uidvalidity=1, uid=7),
        folder_role=FolderRole.INBOX,
        internaldate=NOW,
        size=1,
        sha256="0" * 64,
        fetched_at=NOW,
    )
    return TaggedMessageMeta(
        raw=raw,
        account=AccountTag(account_id="acc", kind="personal", owner="u"),
        alias="me@example.com",
        direction=Direction.INBOUND,
        fingerprint=fp,
        activity_id="act-1",
        canonical=True,
        duplicate_of=None,
        sightings=(),
    )


def test_a_whole_message_becomes_a_displayable_activity() -> None:
    msg = EmailMessage()
    msg["From"] = "Zuzana Černá <zuzana@example.cz>"
    msg["To"] = "me@example.com"
    msg["Subject"] = "Re: Objednávka"
    msg["Message-ID"] = "<reply-1@example.cz>"
    msg["In-Reply-To"] = "<order-1@example.com>"
    msg["References"] = "<order-1@example.com>"
    msg["Date"] = "Mon, 23 Nov 2026 10:00:00 +0100"
    msg.set_content("Dobrý den,\npotvrzuji objednávku.")
    msg.add_alternative(
        '<p>Dobrý den,</p><img src="https://t.example/x.gif"><script>x()</script>', subtype="html"
    )
    msg.add_attachment(
        b"%PDF-1.4 data", maintype="application", subtype="pdf", filename="../obj.pdf"
    )

    mapped = to_activity(_meta("mid:reply-1@example.cz"), msg.as_bytes(policy=SMTP), NOW)
    a = mapped.activity
    assert a.subject == "Re: Objednávka"
    assert a.text_body.startswith("Dobrý den,\npotvrzuji")
    assert a.snippet == "Dobrý den, potvrzuji objednávku."
    assert (
        a.html_body is not None and "script" not in a.html_body and "t.example" not in a.html_body
    )
    assert a.remote_images_blocked == 1
    assert [(x.filename, x.content_type, x.size) for x in a.attachments] == [
        ("obj.pdf", "application/pdf", len(b"%PDF-1.4 data"))
    ]
    assert mapped.attachment_contents == (b"%PDF-1.4 data",)
    assert a.in_reply_to == "order-1@example.com"
    assert a.thread_id == thread_id_of("order-1@example.com")
    assert mapped.parent_ids == ("order-1@example.com",)
    assert mapped.in_thread({"order-1@example.com": "t-sent"}).activity.thread_id == "t-sent"


@pytest.mark.parametrize(
    "subject",
    [
        "Objednávka 12",
        "Re: Objednávka 12",
        "RE: AW:  Fwd: objednávka   12",
        "Odp: Re[2]: Objednávka 12",
    ],
)
def test_reply_prefixes_in_many_languages_are_ignored(subject: str) -> None:
    assert normalise_subject(subject) == "objednávka 12"


def test_subject_key_needs_the_same_participants() -> None:
    key = subject_key("Objednávka", ["shop@x.cz", "Buyer@Y.cz"])
    assert key == subject_key("Re: Objednávka", ["buyer@y.cz", "shop@x.cz"])
    assert key != subject_key("Re: Objednávka", ["other@z.cz", "shop@x.cz"])
    assert subject_key("Re:", ["a@b.c"]) is None


def test_subject_fallback_only_for_mail_that_names_no_parent() -> None:
    assert thread_for("r@y", None, (), {}, "a", subject_thread="t-sub") == "t-sub"
    assert thread_for("r@y", "p@x", ("p@x",), {}, "a", subject_thread="t-sub") == thread_id_of(
        "p@x"
    )
