"""Build the outbound message from a send request (pure; stdlib ``email``).

Everything that goes into the bytes is derived from the request, so building it again
after a crash yields the same message: the ``Message-ID`` comes from the request id,
``Date`` from when it was requested, and the MIME boundaries from the request id too
(the stdlib would pick random ones). Bcc recipients go into the SMTP envelope only,
never into a header (RFC 5322 3.6.3 allows either; a CRM must not reveal them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from email import errors as email_errors
from email import policy
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.utils import format_datetime

import nh3

from schemas.common import Address
from schemas.send_request import SendRequest
from services.activity_writer.attachments import safe_filename
from services.mail import bracketed
from services.sender.errors import SendRefused

# CRLF line ends (RFC 5321 2.3.8) and only 7-bit content: non-ASCII headers become
# RFC 2047 encoded words, non-ASCII bodies quoted-printable or base64, so any server
# takes it, with or without 8BITMIME.
POLICY = policy.SMTP.clone(cte_type="7bit", max_line_length=78)
# RFC 5322 3.6.4 puts no limit on References; long threads are cut to the first id
# (the thread's root) and the most recent ones, as mail clients do.
MAX_REFERENCES = 20


@dataclass(frozen=True)
class ReplyParent:
    """The message being replied to, as its activity recorded it."""

    message_id: str
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


def message_id_for(request_id: str, sender_address: str) -> str:
    """``<hash@sender-domain>``: the same for every retry of one request (RFC 5322 3.6.4)."""
    digest = hashlib.sha256(f"mailsync-send:{request_id}".encode()).hexdigest()[:32]
    domain = sender_address.rpartition("@")[2].lower() or "mailsync.invalid"
    return bracketed(f"{digest}@{domain}")


def references_for(parent: ReplyParent) -> tuple[str, ...]:
    refs = [*parent.references, parent.message_id]
    seen: set[str] = set()
    unique = [r for r in refs if not (r in seen or seen.add(r))]  # type: ignore[func-returns-value]
    if len(unique) > MAX_REFERENCES:
        unique = [unique[0], *unique[-(MAX_REFERENCES - 1) :]]
    return tuple(unique)


def _header_address(addr: Address) -> HeaderAddress:
    try:
        return HeaderAddress(display_name=addr.name, addr_spec=addr.address)
    except (ValueError, IndexError, email_errors.MessageError) as exc:
        raise SendRefused(f"not a valid e-mail address: {addr.address!r} ({exc})") from None


def envelope_recipients(request: SendRequest) -> list[str]:
    """To, Cc and Bcc, each address once, in order (RFC 5321 envelope)."""
    seen: set[str] = set()
    out: list[str] = []
    for addr in (*request.to, *request.cc, *request.bcc):
        key = addr.address.lower()
        if key not in seen:
            seen.add(key)
            out.append(addr.address)
    return out


def _text_from_html(html: str) -> str:
    # nh3 with no allowed tags keeps only the text; a plain alternative for clients
    # (and spam filters) that want one.
    return nh3.clean(html, tags=set()).strip() + "\n"


def build_message(
    request: SendRequest,
    message_id: str,
    attachments: Sequence[Attachment] = (),
    parent: ReplyParent | None = None,
) -> bytes:
    """The RFC 5322 message for ``request``; raises :class:`SendRefused` on bad input."""
    msg = EmailMessage(policy=POLICY)
    try:
        msg["From"] = _header_address(request.sender)
        if request.to:
            msg["To"] = [_header_address(a) for a in request.to]
        if request.cc:
            msg["Cc"] = [_header_address(a) for a in request.cc]
        msg["Subject"] = request.subject
        msg["Date"] = format_datetime(request.requested_at)
        msg["Message-ID"] = message_id
        if parent is not None:
            msg["In-Reply-To"] = parent.message_id
            msg["References"] = " ".join(references_for(parent))
        msg["User-Agent"] = "mailsync"
        text = request.text_body
        if text is None and request.html_body is not None:
            text = _text_from_html(request.html_body)
        msg.set_content(text or "")
        if request.html_body is not None:
            msg.add_alternative(request.html_body, subtype="html")
        for att in attachments:
            maintype, _, subtype = att.content_type.partition("/")
            msg.add_attachment(
                att.data,
                maintype=maintype or "application",
                subtype=subtype or "octet-stream",
                filename=safe_filename(att.filename, att.content_type),
            )
    except ValueError as exc:
        # e.g. a CR or LF smuggled into the subject (header injection).
        raise SendRefused(f"cannot build the message: {exc}") from None
    seed = hashlib.sha256(request.request_id.encode()).hexdigest()[:24]
    for n, part in enumerate(p for p in msg.walk() if p.is_multipart()):
        part.set_boundary(f"=_mailsync_{seed}_{n}")
    return msg.as_bytes(policy=POLICY)
