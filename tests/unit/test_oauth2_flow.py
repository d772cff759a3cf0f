"""The OAuth2 sign-in's decisions (:mod:`services.api.oauth2_flow`, :mod:`.oauth2_pages`)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr

from services.api.errors import AccessDenied, TokenExchangeFailed
from services.api.oauth2_flow import (
    ExchangeFailed,
    ProviderId,
    authorization_url,
    code_form,
    google,
    id_token_claims,
    mailbox_address,
    microsoft,
    parse_code_response,
    pkce_challenge,
    pkce_verifier,
    providers,
    state_key,
    usernames,
)
from services.api.oauth2_pages import problem, return_location, wants_json

NOW = dt.datetime(2026, 9, 1, 12, tzinfo=dt.UTC)


def test_pkce_s256_matches_rfc_7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_pkce_verifier_is_43_unreserved_characters_and_fresh() -> None:
    first, second = pkce_verifier(), pkce_verifier()
    assert re.fullmatch(r"[A-Za-z0-9._~-]{43}", first) and first != second


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_microsoft_asks_for_imap_smtp_and_offline_access_with_pkce() -> None:
    provider = microsoft("app-id", SecretStr("s"), "contoso.onmicrosoft.com")
    url = authorization_url(
        provider, redirect_uri="https://crm/cb", state="st", challenge="ch", login_hint="a@b.c"
    )
    assert url.startswith(
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize?"
    )
    q = _query(url)
    assert q["scope"].split() == [
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "https://outlook.office.com/SMTP.Send",
        "offline_access",
        "openid",
        "email",
    ]
    assert q["response_type"] == "code" and q["client_id"] == "app-id"
    assert (q["code_challenge"], q["code_challenge_method"]) == ("ch", "S256")
    assert (q["state"], q["redirect_uri"], q["login_hint"]) == ("st", "https://crm/cb", "a@b.c")
    assert "offline_access" in provider.refresh_scope and "openid" not in provider.refresh_scope


def test_google_asks_for_mail_scope_offline_and_consent() -> None:
    q = _query(
        authorization_url(
            google("gid", None), redirect_uri="https://crm/cb", state="s", challenge="c"
        )
    )
    assert "https://mail.google.com/" in q["scope"].split()
    assert q["access_type"] == "offline" and q["prompt"] == "consent"
    assert "login_hint" not in q


def test_only_configured_providers_are_offered() -> None:
    none = dict.fromkeys(("microsoft_client_id", "google_client_id", "custom_client_id"))
    secrets = dict.fromkeys(
        ("microsoft_client_secret", "google_client_secret", "custom_client_secret")
    )
    urls = dict.fromkeys(("custom_authorize_url", "custom_token_url", "custom_userinfo_url"))
    base = {**none, **secrets, **urls, "microsoft_tenant": "common", "custom_scope": "openid"}
    assert providers(**base) == {}  # type: ignore[arg-type]
    found = providers(**{**base, "google_client_id": "g"})  # type: ignore[arg-type]
    assert list(found) == [ProviderId.GOOGLE]


def test_code_form_carries_the_verifier_and_names_a_public_client_only() -> None:
    form = code_form("c", "v", "https://crm/cb", "app", public=False)
    assert form == {
        "grant_type": "authorization_code",
        "code": "c",
        "redirect_uri": "https://crm/cb",
        "code_verifier": "v",
    }
    assert code_form("c", "v", "u", "app", public=True)["client_id"] == "app"


def _jwt(claims: dict[str, object]) -> str:
    def part(d: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.sig"


def test_a_code_response_with_refresh_and_id_token() -> None:
    body = {
        "access_token": "at",
        "token_type": "Bearer",
        "expires_in": 3599,
        "refresh_token": "rt",
        "id_token": _jwt({"preferred_username": "Jana@Contoso.com"}),
    }
    grant = parse_code_response(200, json.dumps(body).encode(), NOW)
    assert grant.refresh_token == "rt" and grant.expires_at == NOW + dt.timedelta(seconds=3599)
    assert grant.id_token is not None
    assert mailbox_address(id_token_claims(grant.id_token)) == "jana@contoso.com"
    assert "rt" not in repr(grant) and "at'" not in repr(grant)


@pytest.mark.parametrize(
    ("status", "body", "retriable", "text"),
    [
        (503, b"", True, "HTTP 503"),
        (400, b'{"error": "invalid_grant", "error_description": "code used"}', False, "code used"),
        (200, b'{"access_token": "a", "token_type": "Bearer"}', False, "offline"),
        (200, b'{"access_token": "a", "token_type": "mac", "refresh_token": "r"}', False, "Bearer"),
        (401, b"<html>", False, "without JSON"),
    ],
)
def test_a_failed_code_exchange_says_why(
    status: int, body: bytes, retriable: bool, text: str
) -> None:
    with pytest.raises(ExchangeFailed, match=text) as failed:
        parse_code_response(status, body, NOW)
    assert failed.value.retriable is retriable


def test_mailbox_address_prefers_email_and_ignores_non_addresses() -> None:
    assert mailbox_address({"email": "A@x.org", "preferred_username": "b@x.org"}) == "a@x.org"
    assert mailbox_address({"preferred_username": "live.com#jana", "upn": "j@x.org"}) == "j@x.org"
    assert mailbox_address({"sub": "123"}) is None
    assert id_token_claims("not-a-jwt") == {} and id_token_claims("a.!!!.c") == {}


def test_a_shared_mailbox_is_opened_as_itself_and_sent_through_as_the_member() -> None:
    own = usernames(None, "jana@contoso.com")
    assert (own.address, own.imap, own.smtp) == ("jana@contoso.com",) * 3
    shared = usernames("Info@Contoso.com", "jana@contoso.com")
    assert (shared.address, shared.imap, shared.smtp) == (
        "info@contoso.com",
        "info@contoso.com",
        "jana@contoso.com",
    )


def test_state_is_stored_by_its_hash_only() -> None:
    assert state_key("abc") != "abc" and len(state_key("abc")) == 64


def test_callback_answers_json_to_programs_and_a_problem_with_its_code() -> None:
    assert wants_json("application/problem+json") and wants_json("application/json")
    assert not wants_json("text/html,application/xhtml+xml,*/*;q=0.8")
    shown = problem(AccessDenied("access was refused"))
    assert (shown.status, shown.code, shown.retriable) == (403, "access_denied", False)
    assert shown.type.endswith("/access_denied") and shown.title == "Access was refused"
    assert problem(TokenExchangeFailed("HTTP 503", retriable=True)).retriable


def test_return_location_keeps_the_crms_own_query() -> None:
    assert return_location("https://crm/x?tab=mail", {"oauth2": "connected"}) == (
        "https://crm/x?tab=mail&oauth2=connected"
    )
