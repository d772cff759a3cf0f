"""Outbound mail: the send request the CRM publishes, and what became of it.

``mailsync.send-requests`` (key: account id, so one account's mail leaves in order):
a user asks to send a message through one of the accounts they may use.

``mailsync.send-results`` (key: request id): each state the request reached:
``sent`` (with the SMTP reply), ``filed`` (with the Sent folder's UID), ``failed``
(with the reason) or ``unknown``: the server may have the message, but its answer never
came (RFC 1047), so it is not sent again until the user says to resend it or that it
was sent (``last_step`` tells how far the SMTP transaction got). At least once: a
result may be published twice, never zero times.

MongoDB ``send_requests`` (``_id`` = request id) holds :class:`SendRecord`, written
before anything is sent; it is what makes a send happen once in effect.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from schemas._base import Model
from schemas.common import Address, BlobRef


class OutboundAttachment(Model):
    """An attachment already in the blob store (uploaded through the API)."""

    filename: str = Field(description="Shown to the recipient; sanitised when the mail is built.")
    content_type: str = Field(default="application/octet-stream", pattern=r"^[\w.+-]+/[\w.+-]+$")
    blob: BlobRef


class SendRequest(Model):
    schema_version: Literal[1] = 1
    request_id: str = Field(
        pattern=r"^[A-Za-z0-9_.-]{8,128}$",
        description="Chosen by the caller; the Message-ID is derived from it, so a retried "
        "request is the same mail.",
    )
    account_id: str
    sender: Address = Field(description="The account's main address or one of its aliases.")
    requested_by: str = Field(description="User id of the requesting user.")
    groups: tuple[str, ...] = Field(
        default=(), description="The requesting user's groups, as the API authenticated them."
    )
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = Field(default=(), description="Envelope only; never in headers.")
    subject: str = ""
    text_body: str | None = None
    html_body: str | None = None
    attachments: tuple[OutboundAttachment, ...] = ()
    in_reply_to_activity: str | None = Field(
        default=None, description="Activity id this replies to: sets In-Reply-To and References."
    )
    requested_at: dt.datetime

    @model_validator(mode="after")
    def _has_recipient_and_body(self) -> SendRequest:
        if not (self.to or self.cc or self.bcc):
            raise ValueError("a send request needs at least one recipient")
        if self.text_body is None and self.html_body is None:
            raise ValueError("a send request needs a text or an HTML body")
        return self


class SendState(StrEnum):
    ACCEPTED = "accepted"  # recorded; nothing sent yet
    SENDING = "sending"  # handed to SMTP; a crash here is resolved by looking in Sent
    SENT = "sent"  # the SMTP server accepted it
    FILED = "filed"  # and it is in the Sent folder (ours or the server's copy)
    FAILED = "failed"  # refused, unauthorised or out of retries: nothing was sent
    # DATA began but its reply never came (a replica died, the link dropped): the server
    # may have it (RFC 1047). Only the user moves it on: resend, or mark it sent.
    UNKNOWN = "unknown"


class Resolution(StrEnum):
    """What the user decided about a request whose outcome is ``unknown``."""

    RESEND = "resend"  # it did not arrive: send it again (same Message-ID)
    MARK_SENT = "mark_sent"  # it arrived: record it as sent and file it in Sent


class SendResult(Model):
    schema_version: Literal[1] = 1
    request_id: str
    account_id: str
    state: SendState
    message_id: str
    smtp_reply: str | None = Field(default=None, description="e.g. '250 2.0.0 Ok: queued'.")
    sent_folder: str | None = None
    sent_uid: int | None = Field(default=None, description="UID of the copy in Sent.")
    reason: str | None = Field(
        default=None, description="Why it failed, or why its outcome is unknown, for a person."
    )
    last_step: str | None = Field(
        default=None,
        description="Outcome unknown: the SMTP transcript's last step, e.g. 'DATA: message "
        "sent, no reply (ConnectionResetError)'.",
    )
    retriable: bool = False
    activity_id: str | None = None
    at: dt.datetime


class SendRecord(Model):
    """The MongoDB ledger entry of one request (``_id`` = request id)."""

    schema_version: Literal[1] = 1
    id: str = Field(alias="_id")
    request: SendRequest
    state: SendState
    message_id: str
    attempts: int = Field(default=0, ge=0)
    next_attempt_at: dt.datetime | None = None
    smtp_reply: str | None = None
    sent_folder: str | None = None
    sent_uid: int | None = None
    reason: str | None = None
    last_step: str | None = Field(
        default=None, description="Outcome unknown: the SMTP transcript's last step."
    )
    resolution: Resolution | None = Field(
        default=None, description="What the user decided about an unknown outcome."
    )
    activity_id: str | None = None
    lease_owner: str | None = Field(default=None, description="The sender replica working on it.")
    lease_until: dt.datetime | None = None
    unpublished: tuple[SendState, ...] = Field(
        default=(), description="States reached but not yet on the results topic."
    )
    created_at: dt.datetime
    updated_at: dt.datetime
