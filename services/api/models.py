"""The API's request and response bodies (published in ``docs/openapi.json``).

Secrets come in as ``SecretStr`` (never echoed, never logged) and never go out: an
account is shown with ``credentials`` naming the kind of secret it has, not the secret.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, SecretStr

from schemas._base import Model
from schemas.account import (
    AccountRecord,
    Endpoint,
    ImportAll,
    ImportWindow,
    LeaveProcessed,
    Ownership,
    ProcessedAction,
    Security,
)
from schemas.common import Address, FolderRole
from schemas.mailbox_state import AccountState, AccountStatus, FolderProgress
from schemas.send_request import OutboundAttachment, Resolution, SendState
from services.api.liveness import live_status

ACCOUNT_ID = r"^[A-Za-z0-9_.@-]{1,128}$"


# -- step 1: verify ----------------------------------------------------------------------
class EndpointInput(Model):
    """A server as the user gives it; a preset fills in what is left out."""

    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Security | None = None
    username: str = Field(min_length=1)


class VerifyRequest(Model):
    preset: str | None = Field(default=None, description="A preset id from GET /v1/presets.")
    imap: EndpointInput
    smtp: EndpointInput | None = None
    password: SecretStr = Field(description="Password or app password; used once, not saved.")


class FolderPreview(Model):
    name: str
    role: FolderRole = Field(description="From the RFC 6154 special-use attribute.")
    selectable: bool
    messages: int | None = None
    size: int | None = Field(
        default=None, description="Bytes (RFC 8438 STATUS=SIZE), when the server tells."
    )


class ImapPreview(Model):
    endpoint: Endpoint
    capabilities: tuple[str, ...]
    folders: tuple[FolderPreview, ...]
    suggested_folders: tuple[str, ...] = Field(description="INBOX and the Sent folder.")
    sent_folder: str | None
    total_messages: int
    total_size: int | None


class SmtpPreview(Model):
    endpoint: Endpoint
    extensions: tuple[str, ...]
    auth_mechanisms: tuple[str, ...]


class VerifyResult(Model):
    imap: ImapPreview
    smtp: SmtpPreview | None = None


# -- step 2: save --------------------------------------------------------------------------
class AccountInput(Model):
    """An account's settings. ``password`` absent: pending credentials on create, the
    current secret kept on update."""

    account_id: str | None = Field(
        default=None, pattern=ACCOUNT_ID, description="Admins may choose it; else generated."
    )
    address: str = Field(min_length=3)
    aliases: tuple[str, ...] = ()
    display_name: str = ""
    ownership: Ownership | None = Field(
        default=None, description="Absent: personal, owned by the caller."
    )
    imap: Endpoint
    smtp: Endpoint | None = None
    password: SecretStr | None = None
    folders: tuple[str, ...] = ("INBOX",)
    sent_folder: str | None = None
    processed: ProcessedAction = LeaveProcessed()
    import_window: ImportWindow = ImportAll()
    paused: bool = False
    retention_days: int | None = Field(default=None, ge=1)
    max_connections: int | None = Field(
        default=None, ge=1, description="IMAP connections at most; null: the fetcher's default."
    )
    verify: bool = Field(
        default=True, description="Log in to IMAP (and SMTP) with the password before saving."
    )


class PasswordInput(Model):
    password: SecretStr
    verify: bool = True


class StateView(Model):
    status: AccountStatus
    reason: str | None = None
    since: dt.datetime
    last_sync: dt.datetime | None = None
    folders: tuple[FolderProgress, ...] = ()
    done: int = Field(description="Messages imported so far, all folders.")
    total: int = Field(description="Messages to import, all folders.")

    @classmethod
    def of(cls, state: AccountState, now: dt.datetime | None = None) -> StateView:
        status, reason = live_status(state, now or dt.datetime.now(dt.UTC))
        return cls(
            status=status,
            reason=reason,
            since=state.since,
            last_sync=state.last_sync,
            folders=state.folders,
            done=sum(f.done for f in state.folders),
            total=sum(f.total for f in state.folders),
        )


class AccountView(Model):
    account_id: str
    address: str
    aliases: tuple[str, ...]
    display_name: str
    ownership: Ownership
    imap: Endpoint
    smtp: Endpoint | None
    credentials: Literal["password", "oauth2"] | None = Field(
        description="The kind of secret saved (never the secret); null: pending credentials."
    )
    pending_credentials: bool
    folders: tuple[str, ...]
    sent_folder: str | None
    processed: ProcessedAction
    import_window: ImportWindow
    paused: bool
    retention_days: int | None
    max_connections: int | None
    updated_at: dt.datetime
    state: StateView | None = None

    @classmethod
    def of(cls, record: AccountRecord, state: AccountState | None) -> AccountView:
        fields = record.model_dump(exclude={"secret", "schema_version"})
        return cls(
            **fields,
            credentials=record.secret.kind if record.secret else None,
            pending_credentials=record.pending_credentials,
            state=StateView.of(state) if state else None,
        )


class MailboxView(Model):
    """One row of the CRM's "Email mailboxes" list."""

    account_id: str
    address: str
    aliases: tuple[str, ...]
    display_name: str
    kind: Literal["personal", "shared"]
    group: str | None
    credentials: Literal["password", "oauth2"] | None = Field(
        default=None,
        description="How it signs in (a password, or an OAuth2 grant); null: pending.",
    )
    can_send: bool = Field(description="SMTP is configured and the credentials are saved.")
    paused: bool
    state: StateView | None


class RemoveResult(Model):
    account_id: str
    activities_deleted: int = 0
    activities_kept_for_other_accounts: int = 0


class RotateResult(Model):
    accounts_rotated: int


# -- sending ------------------------------------------------------------------------------
class SendInput(Model):
    request_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]{8,128}$",
        description="Idempotency key; generated when absent.",
    )
    account_id: str
    sender: Address | None = Field(
        default=None, description="The account's address or an alias; default: its address."
    )
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()
    subject: str = ""
    text_body: str | None = None
    html_body: str | None = None
    attachments: tuple[OutboundAttachment, ...] = ()
    in_reply_to_activity: str | None = None


class SendAccepted(Model):
    request_id: str
    account_id: str
    state: Literal["accepted"] = "accepted"


class SendStatus(Model):
    """What became of a send request so far (the sender's ledger)."""

    request_id: str
    account_id: str
    state: SendState = Field(
        description="accepted, sending, sent, filed, failed, or unknown: the server may "
        "have it but never answered (RFC 1047); resolve it with POST .../resolve."
    )
    message_id: str
    reason: str | None = Field(default=None, description="Why it failed or is unknown.")
    last_step: str | None = Field(
        default=None, description="Outcome unknown: the SMTP transcript's last step."
    )
    smtp_reply: str | None = None
    sent_folder: str | None = None
    sent_uid: int | None = None
    resolution: Resolution | None = Field(
        default=None, description="What a user decided about an unknown outcome."
    )
    updated_at: dt.datetime


class SendResolutionInput(Model):
    action: Resolution = Field(
        description="resend: it did not arrive, send it again (same Message-ID); "
        "mark_sent: it arrived, record it as sent and file it in Sent."
    )
