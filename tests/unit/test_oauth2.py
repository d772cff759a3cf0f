"""The pure parts of OAuth2: when to refresh, the token response, the SASL responses."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from schemas.account import OAuth2Mechanism
from services.common.oauth2 import (
    OAuth2Rejected,
    OAuth2Revoked,
    OAuth2Unavailable,
    error_ack,
    needs_refresh,
    oauthbearer_response,
    xoauth2_response,
)
from services.common.oauth2.refresh import check_token_url, parse_token_response, refresh_form
from services.fetcher.classify import FailureVerdict, classify_failure

NOW = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
MARGIN = dt.timedelta(seconds=60)


def test_needs_refresh_before_expiry_within_the_margin() -> None:
    assert needs_refresh(None, NOW, MARGIN)  # never fetched
    assert not needs_refresh(NOW + dt.timedelta(minutes=10), NOW, MARGIN)
    assert needs_refresh(NOW + dt.timedelta(seconds=59), NOW, MARGIN)
    assert needs_refresh(NOW + MARGIN, NOW, MARGIN)
    assert needs_refresh(NOW - dt.timedelta(seconds=1), NOW, MARGIN)  # already expired


def test_xoauth2_response_matches_googles_example() -> None:
    # https://developers.google.com/gmail/imap/xoauth2-protocol
    assert xoauth2_response(
        "someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
    ) == (
        "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNr"
        "QmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
    )


def test_oauthbearer_response_matches_rfc_7628_example() -> None:
    # RFC 7628 section 4.1
    assert oauthbearer_response(
        "user@example.com", "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==", "server.example.com", 143
    ) == (
        "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVh"
        "cmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB"
    )


def test_oauthbearer_escapes_the_authzid() -> None:
    raw = base64.b64decode(oauthbearer_response("a,b=c@example.com", "t", "h", 1))
    assert raw.startswith(b"n,a=a=2Cb=3Dc@example.com,\x01")


def test_error_acknowledgements() -> None:
    assert base64.b64decode(error_ack(OAuth2Mechanism.OAUTHBEARER)) == b"\x01"
    assert error_ack(OAuth2Mechanism.XOAUTH2) == ""


def _body(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def test_token_response_success_and_rotation() -> None:
    grant = parse_token_response(
        200, _body(access_token="AT-secret", token_type="bearer", expires_in=3599), NOW
    )
    assert grant.access_token == "AT-secret" and grant.refresh_token is None
    assert grant.expires_at == NOW + dt.timedelta(seconds=3599)
    rotated = parse_token_response(
        200, _body(access_token="AT-secret", token_type="Bearer", refresh_token="rt2"), NOW
    )
    # No expires_in: good for this connection only.
    assert rotated.refresh_token == "rt2" and rotated.expires_at == NOW
    assert "AT-secret" not in repr(grant) and "rt2" not in repr(rotated)


@pytest.mark.parametrize(
    ("status", "body", "error", "verdict"),
    [
        (400, _body(error="invalid_grant", error_description="revoked"), OAuth2Revoked, "auth"),
        (401, _body(error="invalid_client"), OAuth2Rejected, "config"),
        (400, _body(error="invalid_scope"), OAuth2Rejected, "config"),
        (404, b"<html>not found</html>", OAuth2Rejected, "config"),
        (503, b"busy", OAuth2Unavailable, "retry"),
        (429, b"", OAuth2Unavailable, "retry"),
        (200, b"<html>proxy</html>", OAuth2Unavailable, "retry"),
        (200, _body(access_token="x", token_type="mac"), OAuth2Rejected, "config"),
        (200, _body(token_type="Bearer"), OAuth2Rejected, "config"),
    ],
)
def test_token_response_errors_and_what_the_fetcher_does(
    status: int, body: bytes, error: type[Exception], verdict: str
) -> None:
    with pytest.raises(error) as caught:
        parse_token_response(status, body, NOW)
    expected = {
        "auth": FailureVerdict.AUTH_FAILED,
        "config": FailureVerdict.CONFIG,
        "retry": FailureVerdict.RETRY,
    }
    assert classify_failure(caught.value).verdict is expected[verdict]


def test_revoked_message_names_the_cause() -> None:
    with pytest.raises(OAuth2Revoked, match=r"invalid_grant: token revoked.*sign in again"):
        parse_token_response(
            400, _body(error="invalid_grant", error_description="token revoked"), NOW
        )


def test_token_url_must_be_https_except_to_loopback() -> None:
    check_token_url("https://login.microsoftonline.com/common/oauth2/v2.0/token")
    check_token_url("http://127.0.0.1:8080/token")
    check_token_url("http://localhost/token")
    with pytest.raises(OAuth2Rejected, match="use https"):
        check_token_url("http://login.example.com/token")


def test_refresh_form_public_and_confidential() -> None:
    assert refresh_form("rt", "", "cid", public=True) == {
        "grant_type": "refresh_token",
        "refresh_token": "rt",
        "client_id": "cid",
    }
    assert refresh_form("rt", "a b", "cid", public=False) == {
        "grant_type": "refresh_token",
        "refresh_token": "rt",
        "scope": "a b",
    }
