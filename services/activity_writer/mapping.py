"""One tagged message -> its activity document and sighting (pure).

The message is parsed once, by fast-mail-parser (a Rust MIME parser, ~60x the stdlib's
``policy.default`` here); it decodes RFC 2047 words and charsets itself.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from dataclasses import dataclass
from typing import Any

import fast_mail_parser
import nh3

from schemas.activity import ActivityDocument, SightingDoc
from schemas.common import Address
from schemas.tagged_message import TaggedMessageMeta

SNIPPET_CHARS = 200
_WS = re.compile(r"\s+")


class UnparsableMessage(ValueError):
    """fast-mail-parser could not read the message at all."""


@dataclass(frozen=True)
class Mapped:
    activity: ActivityDocument
    sighting: SightingDoc


def _address(value: Any) -> Address | None:
    if value is None or not getattr(value, "address", None):
        return None
    return Address(name=value.display_name or "", address=value.address.lower())


def _addresses(values: Any) -> tuple[Address, ...]:
    if values is None:
        return ()
    items = values if isinstance(values, list) else [values]
    return tuple(a for a in (_address(v) for v in items) if a is not None)


def snippet(text_plain: list[str], text_html: list[str]) -> str:
    if text_plain:
        text = " ".join(text_plain)
    elif text_html:
        text = html.unescape(nh3.clean(" ".join(text_html), tags=set()))
    else:
        return ""
    text = _WS.sub(" ", text).strip()
    return text[:SNIPPET_CHARS]


def to_activity(meta: TaggedMessageMeta, raw: bytes, now: dt.datetime) -> Mapped:
    try:
        mail = fast_mail_parser.parse_email(raw)
    except Exception as exc:  # the parser's own error classes
        raise UnparsableMessage(f"{type(exc).__name__}: {exc}") from None
    froms = _addresses(mail.from_)
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
        to=_addresses(mail.to),
        cc=_addresses(mail.cc),
        date=mail.date_parsed or meta.raw.internaldate,
        direction=meta.direction,
        snippet=snippet(list(mail.text_plain or []), list(mail.text_html or [])),
        account_ids=(sighting.account_id,),
        sightings=(sighting_doc,),
        created_at=now,
        updated_at=now,
    )
    return Mapped(activity, sighting_doc)
