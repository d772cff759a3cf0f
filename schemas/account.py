"""The account record: one mailbox to sync, as published on the compacted accounts topic."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from schemas._base import Model


class Security(StrEnum):
    TLS = "tls"  # implicit TLS (RFC 8314), port 993 / 465
    STARTTLS = "starttls"  # RFC 2595 / RFC 3207
    PLAIN = "plain"  # no TLS: refused unless the host is a loopback address


class Endpoint(Model):
    host: str
    port: int = Field(ge=1, le=65535)
    security: Security = Security.TLS
    username: str


class EncryptedSecret(Model):
    """A password or app password, encrypted with ``MAILSYNC_SECRET_KEY`` (Fernet)."""

    kind: Literal["password"] = "password"
    ciphertext: str = Field(description="Fernet token; never the clear text.")


class OAuth2Mechanism(StrEnum):
    XOAUTH2 = "XOAUTH2"  # Google's and Microsoft's SASL mechanism
    OAUTHBEARER = "OAUTHBEARER"  # RFC 7628


class OAuth2Secret(Model):
    """An OAuth2 grant: the refresh token (RFC 6749 section 6) mailsync exchanges for
    short-lived access tokens, which log in to IMAP and SMTP with XOAUTH2 or OAUTHBEARER.

    The refresh token and the client secret are Fernet tokens made with
    ``MAILSYNC_SECRET_KEY``, never the clear text; access tokens are never stored.
    """

    kind: Literal["oauth2"] = "oauth2"
    token_url: str = Field(
        pattern=r"^https?://",
        description="The token endpoint; https, or http to a loopback host only.",
    )
    client_id: str = Field(min_length=1)
    client_secret_ciphertext: str | None = Field(
        default=None, description="Fernet token of the client secret; None for a public client."
    )
    refresh_token_ciphertext: str = Field(description="Fernet token of the refresh token.")
    scope: str = Field(
        default="",
        description="Space-separated scopes asked for on refresh; empty asks for the "
        "originally granted ones (RFC 6749 section 6).",
    )
    mechanism: OAuth2Mechanism = OAuth2Mechanism.XOAUTH2


AccountSecret = Annotated[EncryptedSecret | OAuth2Secret, Field(discriminator="kind")]


class LeaveProcessed(Model):
    kind: Literal["leave"] = "leave"


class MoveProcessed(Model):
    kind: Literal["move"] = "move"
    folder: str


class KeywordProcessed(Model):
    kind: Literal["keyword"] = "keyword"
    keyword: str = Field(default="$MailsyncImported", pattern=r"^\$?[A-Za-z0-9_.-]+$")


ProcessedAction = Annotated[
    LeaveProcessed | MoveProcessed | KeywordProcessed, Field(discriminator="kind")
]


class ImportAll(Model):
    kind: Literal["all"] = "all"


class ImportSince(Model):
    kind: Literal["since"] = "since"
    since: dt.date


class ImportLastN(Model):
    kind: Literal["last_n"] = "last_n"
    count: int = Field(ge=0, description="The newest N messages of each synced folder.")


ImportWindow = Annotated[ImportAll | ImportSince | ImportLastN, Field(discriminator="kind")]


class PersonalOwnership(Model):
    kind: Literal["personal"] = "personal"
    owner: str = Field(description="User id of the owner.")


class SharedOwnership(Model):
    kind: Literal["shared"] = "shared"
    group: str = Field(description="Group whose members read and send through the mailbox.")


Ownership = Annotated[PersonalOwnership | SharedOwnership, Field(discriminator="kind")]


class AccountRecord(Model):
    """Value of the accounts topic, keyed by ``account_id``; a null value deletes the account."""

    schema_version: Literal[1] = 1
    account_id: str = Field(pattern=r"^[A-Za-z0-9_.@-]{1,128}$")
    address: str = Field(description="Main address of the mailbox.")
    aliases: tuple[str, ...] = ()
    display_name: str = ""
    ownership: Ownership
    imap: Endpoint
    smtp: Endpoint | None = None
    secret: AccountSecret | None = Field(
        default=None, description="Absent: the account is pending credentials and not connected."
    )
    folders: tuple[str, ...] = Field(
        default=("INBOX",), description="Only these folders are ever synced."
    )
    sent_folder: str | None = None
    processed: ProcessedAction = LeaveProcessed()
    import_window: ImportWindow = ImportAll()
    paused: bool = False
    retention_days: int | None = Field(
        default=None,
        ge=1,
        description="Activities of this account older than this (by message date) are "
        "deleted automatically; None keeps them.",
    )
    max_connections: int | None = Field(
        default=None,
        ge=1,
        le=50,
        description="IMAP connections the fetcher may open to this mailbox at once; None "
        "uses MAILSYNC_FETCHER_MAX_CONNECTIONS. Servers limit them (Gmail 15, Microsoft 365 "
        "about 20) and count every client of the mailbox.",
    )
    updated_at: dt.datetime

    @property
    def pending_credentials(self) -> bool:
        return self.secret is None

    @property
    def addresses(self) -> tuple[str, ...]:
        """The main address first, then the aliases."""
        return (self.address, *self.aliases)
