"""Fingerprints and activity ids (pure).

The fingerprint is the normalised Message-ID (RFC 5322 3.6.4). Where it is missing,
or evidently not unique (some mailers stamp every message with the same id), it is a
hash of Date, From, To, Subject and the normalised body. The activity id is derived
from the fingerprint alone, so every stage (and a rebuilt table) finds the same one.
"""

from __future__ import annotations

import hashlib
import re

from services.dedup.headers import Headers

_WS = re.compile(rb"\s+")
# Ids that are not identifiers: empty local part, placeholders, or no domain at all.
_NOT_UNIQUE = re.compile(r"^(?:|<>|null|none|unknown|localhost|[^@]*)$", re.IGNORECASE)


def normalise_message_id(message_id: str | None) -> str | None:
    if not message_id:
        return None
    mid = message_id.strip().strip("<>").strip()
    local, at, domain = mid.rpartition("@")
    if not at or not local or not domain or _NOT_UNIQUE.match(mid):
        return None
    # The local part is case-sensitive in theory; mail systems rewrite the domain's case.
    return f"{local}@{domain.lower()}"


def fingerprint(headers: Headers, body: bytes) -> str:
    """``mid:<id>`` or ``hash:<sha256>``; a forwarded copy that carries the id of the
    message it forwards (``X-Original-Message-ID``) gets that message's fingerprint."""
    mid = normalise_message_id(headers.original_message_id) or normalise_message_id(
        headers.message_id
    )
    if mid is not None:
        return f"mid:{mid}"
    digest = hashlib.sha256()
    for part in (
        headers.date or "",
        ",".join(a for _, a in headers.from_),
        ",".join(sorted(a for _, a in headers.to)),
        headers.subject,
    ):
        digest.update(part.encode("utf-8", "surrogateescape") + b"\x00")
    digest.update(_WS.sub(b" ", body).strip())
    return f"hash:{digest.hexdigest()}"


def activity_id(fp: str) -> str:
    """A stable, URL-safe id for the activity of a fingerprint."""
    return hashlib.sha256(fp.encode("utf-8", "surrogateescape")).hexdigest()[:32]
