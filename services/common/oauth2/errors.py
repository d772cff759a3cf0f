"""OAuth2 errors: what the token endpoint said, classified once.

MailsyncError
├── OAuth2Revoked        invalid_grant (RFC 6749 section 5.2): the refresh token is
│                        revoked or expired; the account is auth_failed until the user
│                        grants access again and the record carries the new token
├── OAuth2Rejected       any other refusal (invalid_client, invalid_scope, a plain-http
│                        endpoint, a malformed answer): fix the account's OAuth2 settings
└── TransientError       retriable = True
    └── OAuth2Unavailable the endpoint is unreachable, timed out or answered 5xx/429
"""

from __future__ import annotations

from services.common.errors import MailsyncError, TransientError


class OAuth2Revoked(MailsyncError):
    """The refresh token no longer works: the user must sign in again (new consent)."""


class OAuth2Rejected(MailsyncError):
    """The token endpoint refused the client or the request: check client id, secret,
    scope and token URL of the account."""


class OAuth2Unavailable(TransientError):
    """The token endpoint did not answer usefully this time; retried with backoff."""
