"""One tagged message -> its activity document and sighting (pure)."""

from __future__ import annotations

import datetime as dt
import html
import re
from dataclasses import dataclass

import nh3

from schemas.activity import ActivityDocument, SightingDoc
from schemas.tagged_message import TaggedMessageMeta
from services.activity_writer.parse import parse_message

SNIPPET_CHARS = 200
_WS = re.compile(r"\s+")


@dataclass(frozen=True)
class Mapped:
    activity: ActivityDocument
    sighting: SightingDoc


def snippet(text_plain: tuple[str, ...], text_html: tuple[str, ...]) -> str:
    if text_plain:
        text = " ".join(text_plain)
    elif text_html:
        text = html.unescape(nh3.clean(" ".join(text_html), tags=set()))
    else:
        return ""
    text = _WS.sub(" ", text).strip()
    return text[:SNIPPET_CHARS]


def to_activity(meta: TaggedMessageMeta, raw: bytes, now: dt.datetime) -> Mapped:
    mail = parse_message(raw)
    froms = mail.from_
    sighting = meta.sighting
    sighting_doc = SightingDoc(**sighting.model_dump(), duplicate=not meta.canonical)
    message_id = (
        meta.fingerprint.removeprefix("mid:") if meta.fingerprint.startswith("mid:") else None
    )
    activity = ActivityDocument(
        id=meta.activity_id,
        fingerprint=meta.fingerprint,
        message_id=message_id,
        subject=_WS.sub(" ", mail.subject or "").strip(),
        from_=froms[0] if froms else None,
        to=mail.to,
        cc=mail.cc,
        date=mail.date or meta.raw.internaldate,
        direction=meta.direction,
        snippet=snippet(mail.text_plain, mail.text_html),
        account_ids=(sighting.account_id,),
        sightings=(sighting_doc,),
        created_at=now,
        updated_at=now,
    )
    return Mapped(activity, sighting_doc)
