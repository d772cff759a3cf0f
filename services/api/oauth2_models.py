"""Bodies of the OAuth2 sign-in (``/v1/accounts/oauth2/*``), and the pending sign-in
kept in MongoDB between the start and the callback."""

from __future__ import annotations

import datetime as dt

from pydantic import Field, model_validator

from schemas._base import Model
from schemas.account import (
    ImportAll,
    ImportWindow,
    LeaveProcessed,
    OAuth2Mechanism,
    Ownership,
    ProcessedAction,
    Security,
)
from services.api.callers import Caller
from services.api.models import ACCOUNT_ID, AccountView
from services.api.oauth2_flow import ProviderId


class ServerInput(Model):
    host: str
    port: int = Field(ge=1, le=65535)
    security: Security = Security.TLS


class OAuth2AccountInput(Model):
    """A new account's settings; user names come from the sign-in."""

    account_id: str | None = Field(
        default=None, pattern=ACCOUNT_ID, description="Admins may choose it; else generated."
    )
    address: str | None = Field(
        default=None,
        description="The mailbox; absent: the signed-in user's own. Another address (a "
        "Microsoft 365 shared mailbox the user has Full Access to) is opened with the "
        "user's token (delegated access).",
    )
    aliases: tuple[str, ...] = ()
    display_name: str = ""
    ownership: Ownership | None = Field(
        default=None, description="Absent: personal, owned by the caller."
    )
    imap: ServerInput | None = Field(
        default=None, description="Absent: the provider's preset (Microsoft 365, Gmail)."
    )
    smtp: ServerInput | None = Field(
        default=None, description="Absent: the provider's preset, when `send` is true."
    )
    send: bool = Field(default=True, description="Configure SMTP (and check its login).")
    folders: tuple[str, ...] = ("INBOX",)
    sent_folder: str | None = None
    processed: ProcessedAction = LeaveProcessed()
    import_window: ImportWindow = ImportAll()
    paused: bool = False
    retention_days: int | None = Field(default=None, ge=1)
    max_connections: int | None = Field(default=None, ge=1)
    mechanism: OAuth2Mechanism = OAuth2Mechanism.XOAUTH2


class OAuth2StartInput(Model):
    provider: ProviderId = Field(
        description="microsoft, google, or custom (MAILSYNC_OAUTH2_CUSTOM_*)."
    )
    account: OAuth2AccountInput | None = Field(
        default=None, description="A new account's settings."
    )
    account_id: str | None = Field(
        default=None,
        pattern=ACCOUNT_ID,
        description="An existing account to sign in again (auth_failed, or a password "
        "account moving to OAuth2): its settings and cursors are kept.",
    )
    login_hint: str | None = Field(
        default=None, description="Pre-fills the provider's sign-in (OpenID login_hint)."
    )

    @model_validator(mode="after")
    def _one_target(self) -> OAuth2StartInput:
        if (self.account is None) == (self.account_id is None):
            raise ValueError("give either account (a new account) or account_id (sign in again)")
        return self


class OAuth2Started(Model):
    authorization_url: str = Field(description="Open it in the user's browser.")
    redirect_uri: str = Field(description="Where the provider sends the browser back.")
    account_id: str = Field(description="The account the sign-in creates or updates.")
    expires_at: dt.datetime = Field(description="The sign-in must complete before this.")


class OAuth2Connected(Model):
    """What the callback connected (its JSON answer)."""

    account: AccountView
    signed_in_as: str
    reauthorised: bool


class PendingSignIn(Model):
    """A started sign-in, keyed by the hash of its ``state``; deleted when used."""

    id: str = Field(alias="_id")
    provider: ProviderId
    caller: Caller = Field(description="Who started it: the account is theirs.")
    account_id: str
    reauthorise: bool
    settings: OAuth2AccountInput | None
    verifier_ciphertext: str = Field(description="The PKCE verifier, Fernet-encrypted.")
    redirect_uri: str
    created_at: dt.datetime
    expires_at: dt.datetime
