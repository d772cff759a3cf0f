"""The threads of a batch: what is looked up once per batch, and how it is joined (pure)."""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from email.policy import SMTP

from schemas.common import Direction, FolderRole, MessageLocation
from schemas.raw_message import RawMessageMeta
from schemas.tagged_message import AccountTag, TaggedMessageMeta
from services.activity_writer.batch_threads import join_threads, latest_threads, plan_lookups
from services.activity_writer.mapping import Mapped, to_activity
from services.activity_writer.thread_keys import to_recompute
from services.activity_writer.threads import subject_key, thread_id_of

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


def mail(n: int, subject: str, sender: str = "buyer@customer.example", **headers: str) -> Mapped:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "me@example.com"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<m{n}@customer.example>"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(f"Message {n}")
    raw = RawMessageMeta(
        location=MessageLocation(account_id="acc", folder="INBOX", uidvalidity=1, uid=n),
        folder_role=FolderRole.INBOX,
        internaldate=NOW,
        size=1,
        sha256="0" * 64,
        fetched_at=NOW,
    )
    meta = TaggedMessageMeta(
        raw=raw,
        account=AccountTag(account_id="acc", kind="personal", owner="u"),
        alias="me@example.com",
        direction=Direction.INBOUND,
        fingerprint=f"mid:m{n}@customer.example",
        activity_id=f"act-{n}",
        canonical=True,
        duplicate_of=None,
        sightings=(),
    )
    return to_activity(meta, msg.as_bytes(policy=SMTP), NOW)


def key(subject: str) -> str | None:
    return subject_key(subject, ["buyer@customer.example", "me@example.com"])


def test_one_lookup_of_each_kind_covers_the_batch() -> None:
    batch = [
        mail(1, "Nabídka"),
        mail(2, "Re: Nabídka", In_Reply_To="<m0@me.example>", References="<r@me.example>"),
        mail(3, "Objednávka"),
    ]
    lookups = plan_lookups(batch)
    assert lookups.message_ids == {"m0@me.example", "r@me.example"}
    # The reply names its parent, so it never joins by subject: its key is not asked for.
    assert lookups.subject_keys == {key("Nabídka"), key("Objednávka")}


def test_a_batch_without_replies_or_subjects_asks_for_nothing() -> None:
    lookups = plan_lookups([mail(1, "")])
    assert lookups.message_ids == frozenset() and lookups.subject_keys == frozenset()


def test_the_latest_activity_names_the_subject_thread() -> None:
    k = "s-1"
    rows = [(k, NOW, "t-new"), (k, NOW - dt.timedelta(days=3), "t-old"), ("s-2", NOW, "t-2")]
    assert latest_threads(rows) == {k: "t-new", "s-2": "t-2"}
    assert latest_threads([]) == {}


def test_stored_threads_are_joined_and_the_batch_threads_itself() -> None:
    original = mail(10, "Poptávka")
    reply_in_batch = mail(11, "Re: Poptávka", In_Reply_To="<m10@customer.example>")
    headerless = mail(12, "RE: Poptávka")  # after the reply, but needs no header of its own
    answer_to_stored = mail(13, "Re: Ceník", In_Reply_To="<m1@me.example>")
    subject_stored = mail(14, "Fwd: Faktura")
    batch = [headerless, reply_in_batch, original, answer_to_stored, subject_stored]

    joined = join_threads(
        batch, known={"m1@me.example": "t-sent"}, by_subject={key("Faktura") or "": "t-faktura"}
    )

    threads = [m.activity.thread_id for m in joined]
    assert [m.activity.id for m in joined] == [m.activity.id for m in batch]  # order kept
    conversation = thread_id_of("m10@customer.example")
    assert threads == [conversation, conversation, conversation, "t-sent", "t-faktura"]


def test_a_subject_thread_stored_before_wins_over_the_batch() -> None:
    first, second = mail(20, "Reklamace"), mail(21, "Re: Reklamace")
    joined = join_threads([first, second], {}, {key("Reklamace") or "": "t-stored"})
    assert [m.activity.thread_id for m in joined] == ["t-stored", "t-stored"]


def test_a_stored_subject_key_is_recomputed_only_when_a_batch_brings_another_thread() -> None:
    wanted = {"k1": "t1", "k2": "t9", "k3": "t3"}
    stored = {"k1": "t1", "k2": "t2"}  # k3: refused, then erased before it was read
    assert to_recompute(wanted, stored) == {"k2", "k3"}
