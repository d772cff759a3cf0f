"""The OAuth2 sign-in flow as data (pure): providers and their scopes, PKCE, ``state``,
the authorization URL, the code exchange's form and answer, the mailbox's address.

The flow is the authorization code grant (RFC 6749 section 4.1) with PKCE (RFC 7636,
``S256``) for a confidential client: :mod:`.oauth2_signin` does the I/O (the pending
sign-in in MongoDB, the token endpoint, the IMAP and SMTP logins, the save).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode

from pydantic import SecretStr

from services.common.oauth2.refresh import check_token_url


class ProviderId(StrEnum):
    MICROSOFT = "microsoft"
    GOOGLE = "google"
    CUSTOM = "custom"


# Microsoft: the Exchange Online resource's delegated permissions for IMAP and SMTP AUTH,
# offline_access for a refresh token; openid and email put the mailbox's address in the
# ID token. Mixing them in one request is allowed: the ID token comes from the OpenID
# scopes, the access token is for outlook.office.com.
MICROSOFT_MAIL_SCOPES = (
    "https://outlook.office.com/IMAP.AccessAsUser.All",
    "https://outlook.office.com/SMTP.Send",
    "offline_access",
)
# Google: one scope covers IMAP and SMTP; the refresh token comes from access_type=offline.
GOOGLE_MAIL_SCOPES = ("https://mail.google.com/",)
OPENID_SCOPES = ("openid", "email")


@dataclass(frozen=True)
class Provider:
    """An authorization server mailsync is registered with (one client per provider)."""

    id: ProviderId
    authorize_url: str
    token_url: str
    client_id: str
    client_secret: SecretStr | None = field(repr=False)
    scopes: tuple[str, ...]
    # Asked for again on every refresh (the OAuth2 secret's ``scope``); empty: as granted.
    refresh_scope: str = ""
    userinfo_url: str | None = None
    # Extra authorization request parameters the provider needs.
    extra: tuple[tuple[str, str], ...] = ()
    # The preset whose IMAP and SMTP servers an account of this provider uses by default.
    preset: str | None = None


def microsoft(
    client_id: str, client_secret: SecretStr | None, tenant: str = "organizations"
) -> Provider:
    """Microsoft identity platform v2.0 for ``tenant`` ("organizations": any work or
    school account; "common" adds personal Outlook.com accounts; or the tenant's id)."""
    base = f"https://login.microsoftonline.com/{tenant}/oauth2/v2.0"
    return Provider(
        id=ProviderId.MICROSOFT,
        authorize_url=f"{base}/authorize",
        token_url=f"{base}/token",
        client_id=client_id,
        client_secret=client_secret,
        scopes=(*MICROSOFT_MAIL_SCOPES, *OPENID_SCOPES),
        # A refresh names the resource's scopes, or Microsoft may answer a token for
        # another resource (the first one asked for is the default).
        refresh_scope=" ".join(MICROSOFT_MAIL_SCOPES),
        # select_account: a user signed in to several accounts chooses which to connect.
        extra=(("prompt", "select_account"),),
        preset="outlook",
    )


def google(client_id: str, client_secret: SecretStr | None) -> Provider:
    return Provider(
        id=ProviderId.GOOGLE,
        authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
        token_url="https://oauth2.googleapis.com/token",
        client_id=client_id,
        client_secret=client_secret,
        scopes=(*GOOGLE_MAIL_SCOPES, *OPENID_SCOPES),
        userinfo_url="https://openidconnect.googleapis.com/v1/userinfo",
        # Google issues a refresh token only for access_type=offline, and on a second
        # sign-in only if consent is asked again.
        extra=(("access_type", "offline"), ("prompt", "consent")),
        preset="gmail",
    )


def pkce_verifier() -> str:
    """RFC 7636 section 4.1: 43-128 characters of [A-Z a-z 0-9 - . _ ~]; 32 random
    octets base64url-encoded make 43."""
    return secrets.token_urlsafe(32)


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 section 4.2, S256: BASE64URL(SHA256(ASCII(verifier))), no padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def new_state() -> str:
    """An unguessable ``state`` (RFC 6749 section 10.12: CSRF protection)."""
    return secrets.token_urlsafe(32)


def state_key(state: str) -> str:
    """How a pending sign-in is stored: the hash of its ``state``, so a reader of the
    database cannot complete someone's sign-in."""
    return hashlib.sha256(state.encode()).hexdigest()


def authorization_url(
    provider: Provider,
    *,
    redirect_uri: str,
    state: str,
    challenge: str,
    login_hint: str | None = None,
) -> str:
    """The URL the user's browser opens (RFC 6749 section 4.1.1, RFC 7636 4.3)."""
    params = {
        "response_type": "code",
        "client_id": provider.client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(provider.scopes),
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **dict(provider.extra),
    }
    if login_hint:
        params["login_hint"] = login_hint  # OpenID Connect Core 3.1.2.1
    sep = "&" if "?" in provider.authorize_url else "?"
    return f"{provider.authorize_url}{sep}{urlencode(params)}"


def expired(expires_at: dt.datetime, now: dt.datetime) -> bool:
    return now >= expires_at


def code_form(
    code: str, verifier: str, redirect_uri: str, client_id: str, *, public: bool
) -> dict[str, str]:
    """The token request of section 4.1.3 with RFC 7636 4.5's ``code_verifier``; a
    confidential client authenticates with HTTP Basic instead of naming itself."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }
    if public:
        form["client_id"] = client_id
    return form


class ExchangeFailed(Exception):
    """The token endpoint refused the code or did not answer usefully."""

    def __init__(self, message: str, *, retriable: bool):
        super().__init__(message)
        self.retriable = retriable


@dataclass(frozen=True)
class CodeGrant:
    """A successful answer to the code exchange (section 5.1)."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: dt.datetime
    id_token: str | None = field(default=None, repr=False)


def parse_code_response(status: int, body: bytes, now: dt.datetime) -> CodeGrant:
    """The code exchange's answer, or :class:`ExchangeFailed` with what it amounts to.
    Only ``error`` and ``error_description`` of an error body are ever shown."""
    if status >= 500 or status == 429:
        raise ExchangeFailed(f"the token endpoint answered HTTP {status}", retriable=True)
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ExchangeFailed(
            f"the token endpoint answered HTTP {status} without JSON", retriable=False
        )
    if status != 200:
        error = str(data.get("error", f"http_{status}"))
        description = str(data.get("error_description", ""))[:300]
        detail = f"{error}: {description}" if description else error
        raise ExchangeFailed(f"the token endpoint refused the code ({detail})", retriable=False)
    access, refresh = data.get("access_token"), data.get("refresh_token")
    if not isinstance(access, str) or not access:
        raise ExchangeFailed("the token response has no access_token", retriable=False)
    if str(data.get("token_type", "")).lower() != "bearer":
        raise ExchangeFailed("the token type is not Bearer", retriable=False)
    if not isinstance(refresh, str) or not refresh:
        # Without one mailsync could log in only for the next hour.
        raise ExchangeFailed(
            "the token response has no refresh_token: the provider must grant offline "
            "access (Microsoft: offline_access; Google: access_type=offline)",
            retriable=False,
        )
    expires_in = data.get("expires_in")
    lifetime = dt.timedelta(seconds=expires_in if isinstance(expires_in, int | float) else 0)
    id_token = data.get("id_token")
    return CodeGrant(
        access_token=access,
        refresh_token=refresh,
        expires_at=now + lifetime,
        id_token=id_token if isinstance(id_token, str) else None,
    )


def id_token_claims(id_token: str) -> dict[str, Any]:
    """The claims of an ID token, unverified: it came straight from the token endpoint
    over TLS (OpenID Connect Core section 3.1.3.7, item 6 allows TLS server validation
    in place of the signature's then). Empty when it cannot be read."""
    try:
        payload = id_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


def mailbox_address(claims: dict[str, Any]) -> str | None:
    """The signed-in user's address: ``email`` (Google, OpenID), else Microsoft's
    ``preferred_username`` or ``upn`` when they look like an address."""
    for name in ("email", "preferred_username", "upn"):
        value = claims.get(name)
        if isinstance(value, str) and "@" in value:
            return value.strip().lower()
    return None


def check_endpoint(url: str) -> None:
    """Token and userinfo endpoints need https (http to loopback only): RFC 6749 3.2."""
    check_token_url(url)


@dataclass(frozen=True)
class Usernames:
    """Who logs in where: the mailbox's address, the IMAP and the SMTP user names."""

    address: str
    imap: str
    smtp: str


def usernames(requested: str | None, signed_in: str) -> Usernames:
    """The mailbox the user signed in for (pure).

    Their own, or (Microsoft 365 delegated access) a shared mailbox they may open: IMAP
    then logs in as the shared mailbox's address with the member's token, while SMTP
    authenticates as the member, who sends as the mailbox with its Send As right.
    """
    address = (requested or signed_in).strip().lower()
    return Usernames(address=address, imap=address, smtp=signed_in)


def providers(
    *,
    microsoft_client_id: str | None,
    microsoft_client_secret: SecretStr | None,
    microsoft_tenant: str,
    google_client_id: str | None,
    google_client_secret: SecretStr | None,
    custom_authorize_url: str | None,
    custom_token_url: str | None,
    custom_userinfo_url: str | None,
    custom_client_id: str | None,
    custom_client_secret: SecretStr | None,
    custom_scope: str,
) -> dict[ProviderId, Provider]:
    """The providers the settings configure (a client id each; custom: its URLs too)."""
    found: dict[ProviderId, Provider] = {}
    if microsoft_client_id:
        found[ProviderId.MICROSOFT] = microsoft(
            microsoft_client_id, microsoft_client_secret, microsoft_tenant
        )
    if google_client_id:
        found[ProviderId.GOOGLE] = google(google_client_id, google_client_secret)
    if custom_client_id and custom_authorize_url and custom_token_url:
        found[ProviderId.CUSTOM] = Provider(
            id=ProviderId.CUSTOM,
            authorize_url=custom_authorize_url,
            token_url=custom_token_url,
            client_id=custom_client_id,
            client_secret=custom_client_secret,
            scopes=tuple(custom_scope.split()),
            userinfo_url=custom_userinfo_url,
        )
    return found
