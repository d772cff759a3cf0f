"""What the OAuth2 callback answers a browser or a program (pure): a page saying what
was connected or why not, an RFC 9457 problem (:mod:`.problems`), or the CRM's page to
return to."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlencode

from services.api.errors import ApiError, SignInFailed, VerificationFailed
from services.api.oauth2_models import OAuth2Connected
from services.api.problems import Problem, from_error

_STYLE = (
    "body{font:15px/1.5 system-ui,sans-serif;max-width:34em;margin:3em auto;color:#1d2330}"
    "h1{font-size:20px}.ok{color:#17663a}.failed{color:#a00}code{background:#eef}"
)


def wants_json(accept: str) -> bool:
    """A program asked (Accept names JSON); a browser gets the page."""
    return "json" in accept.lower() and "text/html" not in accept.lower()


def problem(error: ApiError, instance: str | None = None) -> Problem:
    """The RFC 9457 problem a program gets (the same as any other route's)."""
    return from_error(error, instance)


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
    # A sign-in's own failures have their titles; any other is, to the user, this.
    signed_in = isinstance(error, SignInFailed | VerificationFailed)
    title = shown.title if signed_in else "The account was not connected"
    rows = [f"<p id='detail'>{html.escape(shown.detail)}</p>"]
    if shown.hint:
        rows.append(f"<p id='hint'>{html.escape(shown.hint)}</p>")
    rows.append(
        f"<p>Nothing was saved (<code id='code'>{html.escape(shown.code)}</code>). "
        "Start the sign-in again from the CRM.</p>"
    )
    return _page(title, "failed", "".join(rows))


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
