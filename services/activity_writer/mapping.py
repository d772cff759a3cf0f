"""One tagged message -> its activity document and sighting (pure)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from schemas.activity import ActivityDocument, AttachmentMeta, SightingDoc
from schemas.tagged_message import TaggedMessageMeta
from services.activity_writer.attachments import safe_filename
from services.activity_writer.html import html_to_text, sanitize_html
from services.activity_writer.parse import parse_message
from services.activity_writer.threads import own_thread, parent_ids, subject_key, thread_for
from services.mail import Fingerprint

SNIPPET_CHARS = 200
# Bodies beyond this are cut (and flagged): a document must stay under MongoDB's 16 MB.
MAX_BODY_CHARS = 1_000_000
_WS = re.compile(r"\s+")


@dataclass(frozen=True)
class Mapped:
    """An activity and its sighting, with what must be stored or looked up first."""

    activity: ActivityDocument
    sighting: SightingDoc
    attachment_contents: tuple[bytes, ...]  # into the blob store, by SHA-256, before the write
    parent_ids: tuple[str, ...]  # message ids whose threads this message may join
    arrived: dt.datetime | None = None  # IMAP INTERNALDATE, for the ingest latency
    fetched_at: dt.datetime | None = None

    def in_thread(
        self, known_threads: Mapping[str, str], by_subject: Mapping[str, str] | None = None
    ) -> Mapped:
        """The same, joined to a known parent's thread, or to the thread of the same
        subject among the same participants (``by_subject``: thread key -> thread id)."""
        a = self.activity
        subject_thread = (by_subject or {}).get(a.thread_key) if a.thread_key else None
        thread = thread_for(
            a.message_id, a.in_reply_to, a.references, known_threads, a.id, subject_thread
        )
        if thread == a.thread_id:
            return self
        return replace(self, activity=a.model_copy(update={"thread_id": thread}))


def snippet(text: str) -> str:
    return _WS.sub(" ", text).strip()[:SNIPPET_CHARS]


def _cut(text: str) -> tuple[str, bool]:
    return (text[:MAX_BODY_CHARS], True) if len(text) > MAX_BODY_CHARS else (text, False)


def to_activity(meta: TaggedMessageMeta, raw: bytes, now: dt.datetime) -> Mapped:
    mail = parse_message(raw)
    sighting = meta.sighting
    # As if it were the first: the repository decides from what MongoDB holds, not
    # from dedup's table (which a lost changelog or a replay can contradict).
    sighting_doc = SightingDoc(
        **sighting.model_dump(),
        flags=meta.raw.flags,
        duplicate=False,
        raw_blob=meta.raw.blob.sha256 if meta.raw.blob else None,
    )
    message_id = Fingerprint(meta.fingerprint).message_id
    html_body: str | None = None
    blocked = 0
    if mail.text_html:
        clean = sanitize_html("\n".join(mail.text_html))
        html_body, blocked = clean.html, clean.remote_images_blocked
    if mail.text_plain:
        text = "\n".join(mail.text_plain)
    else:
        text = html_to_text("\n".join(mail.text_html))
    text, text_cut = _cut(text.replace("\r\n", "\n"))
    html_cut = False
    if html_body is not None:
        html_body, html_cut = _cut(html_body)
    attachments = tuple(
        AttachmentMeta(
            filename=safe_filename(a.filename, a.content_type),
            content_type=a.content_type,
            size=len(a.content),
            sha256=hashlib.sha256(a.content).hexdigest(),
            content_id=a.content_id,
            inline=a.inline,
        )
        for a in mail.attachments
    )
    activity = ActivityDocument(
        id=meta.activity_id,
        fingerprint=meta.fingerprint,
        message_id=message_id,
        subject=_WS.sub(" ", mail.subject or "").strip(),
        from_=mail.from_[0] if mail.from_ else None,
        to=mail.to,
        cc=mail.cc,
        date=mail.date or meta.raw.internaldate,
        direction=meta.direction,
        snippet=snippet(text),
        text_body=text,
        html_body=html_body,
        remote_images_blocked=blocked,
        body_truncated=text_cut or html_cut,
        attachments=attachments,
        # Only named here; the batch decides it (services.activity_writer.batch_threads),
        # once it knows the stored threads and the batch's own messages.
        thread_id=own_thread(message_id, mail.in_reply_to, mail.references, meta.activity_id),
        thread_key=subject_key(
            mail.subject or "", [x.address for x in (*mail.from_, *mail.to, *mail.cc)]
        ),
        in_reply_to=mail.in_reply_to,
        references=mail.references,
        account_ids=(sighting.account_id,),
        sightings=(sighting_doc,),
        created_at=now,
        updated_at=now,
    )
    return Mapped(
        activity,
        sighting_doc,
        tuple(a.content for a in mail.attachments),
        tuple(parent_ids(mail.in_reply_to, mail.references)),
        arrived=meta.raw.internaldate,
        fetched_at=meta.raw.fetched_at,
    )
