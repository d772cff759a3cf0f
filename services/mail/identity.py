"""A message's identity: its fingerprint and its activity (pure).

The rules every stage follows (dedup, the writer, the sender, the fetcher's
revalidation), in one place:

1. **Message-ID.** The fingerprint is ``mid:`` and the normalised Message-ID (RFC 5322
   3.6.4: brackets and any white space inside them dropped, the domain lowercased), or
   the id a forwarder kept in X-Original-Message-ID / Original-Message-ID (RFC 8098).
   Placeholders (``<>``, ``unknown``, no ``@``) are no Message-ID.
2. **The same Message-ID is not always the same message.** Mailing lists re-send a
   message with a footer and a ``[list]`` tag (the same message); a draft sent twice,
   or a broken client that stamps one id on many messages, are not. Copies that share a
   Message-ID are the same message when their *variant* agrees: the From addresses,
   the Date as an instant, and the Subject without list tags and reply/forward prefixes
   (:func:`variant`). The activity id is derived from the fingerprint *and* the variant,
   so conflicting copies are distinct activities whatever order they arrive in (the
   writer flags them ``message_id_conflict`` and links them, ``conflicts_with``), and
   the same message in two folders or accounts is one activity.
3. **Without a Message-ID** the fingerprint is ``hash:`` and a SHA-256 of the whole
   message: every byte of the body and of the header block except the fields servers
   add on the way into a mailbox (RFC 5321 4.4 trace fields, delivery and mailbox-
   format fields, spam verdicts: :data:`TRANSIT_FIELDS`). So one message delivered to
   two mailboxes is one activity, and messages that differ in any other byte (an empty
   message and a message of random bytes, say) never share one.

Every (account, folder, UIDVALIDITY, UID) is one sighting of exactly one activity:
the sightings of an activity are never merged by place (:mod:`services.dedup.sightings`).

The fingerprint travels as text (the key of dedup-by-fingerprint, ``fingerprint`` in
MessageTags and in the activity document), so :class:`Fingerprint` is a ``str``: it is
made here, and read back here (:attr:`Fingerprint.message_id`), by no one else. A
stored Message-ID goes back into a header as :func:`bracketed` gives it.
"""

from __future__ import annotations

import email.utils
import hashlib
import re
from dataclasses import dataclass

from services.mail.headers import Headers, split
from services.mail.subject import normalise_subject

# Ids that are not identifiers: empty local part, placeholders, or no domain at all.
_NOT_UNIQUE = re.compile(r"^(?:|<>|null|none|unknown|localhost|[^@]*)$", re.IGNORECASE)
_WS = re.compile(r"\s+")
# Mailing-list tags before the subject: "[list] ", "[Ticket #12] " (any number).
_LIST_TAG = re.compile(r"^\s*(?:\[[^\]]*\]\s*)+")
# Fields a server adds on delivery, not the sender: RFC 5321 4.4 (Received,
# Return-Path), delivery addresses (Delivered-To, X-Original-To, Envelope-To),
# authentication verdicts (RFC 8601, RFC 8617 ARC, SPF), mbox/Dovecot bookkeeping.
TRANSIT_FIELDS = frozenset(
    {
        b"received",
        b"return-path",
        b"delivered-to",
        b"x-original-to",
        b"x-delivered-to",
        b"envelope-to",
        b"x-envelope-to",
        b"authentication-results",
        b"arc-seal",
        b"arc-message-signature",
        b"arc-authentication-results",
        b"received-spf",
        b"status",
        b"x-status",
        b"x-keywords",
        b"x-uid",
        b"x-imap",
        b"x-imapbase",
        b"content-length",
        b"lines",
    }
)
_TRANSIT_PREFIXES = (b"x-spam-", b"x-virus-")
_FIELD_START = re.compile(rb"(?m)^(?=[^ \t\r\n])")


_MID = "mid:"
_HASH = "hash:"


class Fingerprint(str):
    """``mid:<id>`` (the normalised Message-ID) or ``hash:<sha256>`` (the content hash):
    what dedup partitions by, and what an activity records; the text it travels as."""

    __slots__ = ()

    @classmethod
    def from_message_id(cls, message_id: str) -> Fingerprint:
        """The fingerprint of a message known by ``message_id``, already normalised
        (:func:`normalise_message_id`, :func:`message_id_of`)."""
        return cls(_MID + message_id)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Fingerprint:
        """The fingerprint of a message without a Message-ID: its :func:`content_hash`."""
        return cls(_HASH + content_hash(raw))

    @property
    def message_id(self) -> str | None:
        """The normalised Message-ID it was made from; None for a content hash (and for
        any text that is no Message-ID fingerprint)."""
        return self[len(_MID) :] if self.startswith(_MID) else None

    def activity_id(self, variant: str) -> str:
        """The activity id: of the fingerprint and the :func:`variant` for a Message-ID
        (copies that disagree are distinct activities), of the fingerprint alone for a
        content hash (its bytes are the message; its variant is "")."""
        if self.startswith(_HASH):
            return activity_id(self)
        return activity_id(f"{self}\x00{variant}")


@dataclass(frozen=True)
class Identity:
    fingerprint: Fingerprint  # what dedup partitions by
    variant: str  # what copies of one Message-ID must share to be one message; "" for hash
    activity_id: str


def normalise_message_id(message_id: str | None) -> str | None:
    """``< Abc@Example.COM >`` -> ``Abc@example.com``; None for no usable id."""
    if not message_id:
        return None
    mid = _WS.sub("", message_id).strip("<>")
    local, at, domain = mid.rpartition("@")
    if not at or not local or not domain or _NOT_UNIQUE.match(mid):
        return None
    # The local part is case-sensitive in theory; mail systems rewrite the domain's case.
    return f"{local}@{domain.lower()}"


def message_id_of(headers: Headers) -> str | None:
    """The normalised id the message is known by: a forward's original id first."""
    return normalise_message_id(headers.original_message_id) or normalise_message_id(
        headers.message_id
    )


def _date_key(date: str | None) -> str:
    """The Date header as an instant (RFC 5322 3.3: one moment, many spellings)."""
    if not date:
        return ""
    parsed = email.utils.parsedate_tz(date)
    if parsed is None:
        return " ".join(date.split())
    return str(email.utils.mktime_tz(parsed))


def variant(headers: Headers) -> str:
    """What copies sharing a Message-ID must agree on to be the same message (a hash)."""
    subject = normalise_subject(_LIST_TAG.sub("", headers.subject))
    subject = normalise_subject(_LIST_TAG.sub("", subject))  # "Re: [list] x" as "[list] Re: x"
    senders = ",".join(sorted({a for _, a in headers.from_}))
    key = "\x00".join((senders, _date_key(headers.date), subject))
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _is_transit(field: bytes) -> bool:
    name, colon, _ = field.partition(b":")
    name = name.rstrip(b" \t").lower()  # RFC 5322 4.5.1 (obsolete): WSP before the colon
    return bool(colon) and (name in TRANSIT_FIELDS or name.startswith(_TRANSIT_PREFIXES))


def content_hash(raw: bytes) -> str:
    """SHA-256 of ``raw`` without its transit fields (:data:`TRANSIT_FIELDS`)."""
    block, body = split(raw)
    digest = hashlib.sha256()
    for field in _FIELD_START.split(block):
        if field and not _is_transit(field):
            digest.update(field.rstrip(b"\r\n") + b"\n")
    # The boundary is hashed too: "all headers" and "all body" are different messages.
    digest.update(b"\x00" if len(block) == len(raw) else b"\x01")
    digest.update(body)
    return digest.hexdigest()


def fingerprint(headers: Headers, raw: bytes) -> Fingerprint:
    """``mid:<id>`` or ``hash:<sha256>`` of the whole message ``raw`` (``headers`` parsed
    from it); a forwarded copy that carries the id of the message it forwards
    (``X-Original-Message-ID``) gets that message's fingerprint."""
    mid = message_id_of(headers)
    return Fingerprint.from_message_id(mid) if mid is not None else Fingerprint.from_bytes(raw)


def identify(headers: Headers, raw: bytes) -> Identity:
    """The fingerprint, variant and activity id of the message ``raw``."""
    fp = fingerprint(headers, raw)
    v = "" if fp.message_id is None else variant(headers)
    return Identity(fp, v, fp.activity_id(v))


def activity_id(key: str) -> str:
    """A stable, URL-safe id from an identity key (a fingerprint, with its variant)."""
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def bracketed(message_id: str) -> str:
    """``a@b`` -> ``<a@b>``: a Message-ID as a header carries it (RFC 5322 3.6.4: a
    msg-id is ``"<" id-left "@" id-right ">"``, and In-Reply-To and References list
    msg-ids); activities store it without the brackets (:func:`normalise_message_id`)."""
    return f"<{message_id}>"
