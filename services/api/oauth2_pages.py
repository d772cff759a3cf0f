"""What the OAuth2 callback answers a browser or a program (pure): a page saying what
was connected or why not, an RFC 9457 problem, or the CRM's page to return to."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlencode

from pydantic import Field

from schemas._base import Model
from services.api.errors import ApiError, VerificationFailed
from services.api.oauth2_models import OAuth2Connected

PROBLEM_TYPE = "https://mailsync.invalid/problems/"

_TITLES = {
    "access_denied": "Access was refused",
    "invalid_state": "This sign-in is no longer valid",
    "provider_error": "The provider refused the sign-in",
    "token_exchange_failed": "The sign-in could not be completed",
    "address_unknown": "Which mailbox is it?",
    "verification_failed": "The mail server refused the login",
    "provider_not_configured": "This provider is not set up",
}

_STYLE = (
    "body{font:15px/1.5 system-ui,sans-serif;max-width:34em;margin:3em auto;color:#1d2330}"
    "h1{font-size:20px}.ok{color:#17663a}.failed{color:#a00}code{background:#eef}"
)


class Problem(Model):
    """An error as RFC 9457 ``application/problem+json``, with mailsync's code."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    retriable: bool
    hint: str | None = Field(default=None, description="What the user can do about it.")


def wants_json(accept: str) -> bool:
    """A program asked (Accept names JSON); a browser gets the page."""
    return "json" in accept.lower() and "text/html" not in accept.lower()


def problem(error: ApiError) -> Problem:
    hint = error.failure.hint if isinstance(error, VerificationFailed) else None
    return Problem(
        type=PROBLEM_TYPE + error.code,
        title=_TITLES.get(error.code, "The account was not connected"),
        status=error.status,
        detail=str(error),
        code=error.code,
        retriable=error.retriable,
        hint=hint,
    )


def _page(title: str, cls: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)} - mailsync</title><style>{_STYLE}</style></head>"
        f'<body><h1 class="{cls}" id="title">{html.escape(title)}</h1>{body}</body></html>'
    )


def connected_page(done: OAuth2Connected) -> str:
    account = done.account
    what = "signed in again" if done.reauthorised else "connected"
    servers = "IMAP and SMTP" if account.smtp else "IMAP"
    rows = [
        f"<p id='address'>Mailbox <b>{html.escape(account.address)}</b> is {what}.</p>",
        f"<p>Signed in as {html.escape(done.signed_in_as)} with OAuth2; the login to "
        f"{servers} worked. Its mail now syncs.</p>",
        f"<p>Account <code>{html.escape(account.account_id)}</code>, credentials: "
        f"<span id='credentials'>{html.escape(account.credentials or 'none')}</span>.</p>",
        "<p>You can close this window.</p>",
    ]
    return _page("Mailbox connected", "ok", "".join(rows))


def failed_page(error: ApiError) -> str:
    shown = problem(error)
    rows = [f"<p id='detail'>{html.escape(shown.detail)}</p>"]
    if shown.hint:
        rows.append(f"<p id='hint'>{html.escape(shown.hint)}</p>")
    rows.append(
        f"<p>Nothing was saved (<code id='code'>{html.escape(shown.code)}</code>). "
        "Start the sign-in again from the CRM.</p>"
    )
    return _page(shown.title, "failed", "".join(rows))


def return_location(return_url: str, params: dict[str, Any]) -> str:
    """The CRM's page with the outcome in its query (its own query kept)."""
    sep = "&" if "?" in return_url else "?"
    return f"{return_url}{sep}{urlencode({k: str(v) for k, v in params.items()})}"


def connected_params(done: OAuth2Connected) -> dict[str, Any]:
    return {
        "oauth2": "connected",
        "account_id": done.account.account_id,
        "address": done.account.address,
    }


def failed_params(error: ApiError) -> dict[str, Any]:
    return {"oauth2": "failed", "error": error.code, "message": str(error)[:300]}
