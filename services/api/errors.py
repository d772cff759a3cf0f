"""Accounts API errors: each carries its HTTP status and a stable code.

MailsyncError
└── ApiError                 answered as an RFC 9457 problem (:mod:`.problems`)
    ├── InvalidCursor        400: a ``cursor`` no list of this API handed out
    ├── NotAuthenticated     401: no token, or an unknown one
    ├── Forbidden            403: not yours, or no such account (a non-admin cannot tell)
    ├── NotFound             404: no such activity, or (to an admin) no such account
    ├── Conflict             409: the account is not in a state that allows this
    ├── SecretUndecryptable  409: a saved secret does not decrypt with the configured keys
    ├── InvalidRequest       422: the request cannot be carried out as given
    ├── VerificationFailed   422: the mail server refused (with the classified reason)
    ├── Unavailable          503, retriable: the broker or the database is away
    └── SignInFailed         the OAuth2 sign-in did not connect the account (nothing saved)
        ├── AccessDenied         403 access_denied: the user refused consent
        ├── InvalidState         400 invalid_state: unknown, used or expired ``state``
        ├── ProviderError        400 provider_error: the provider answered another error
        ├── TokenExchangeFailed  502 token_exchange_failed: the code was not exchanged
        ├── AddressUnknown       422 address_unknown: no mailbox address to connect
        └── ProviderNotConfigured 422 provider_not_configured: no client for the provider
"""

from __future__ import annotations

from typing import ClassVar

from services.api.verify_errors import VerifyFailure
from services.common.errors import MailsyncError


class ApiError(MailsyncError):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"


class InvalidCursor(ApiError):
    """The ``cursor`` is not one a list answered: start again from the first page."""

    status = 400
    code = "invalid_cursor"


class NotAuthenticated(ApiError):
    """Send ``Authorization: Bearer TOKEN`` with a configured API token."""

    status = 401
    code = "unauthenticated"


class Forbidden(ApiError):
    """The caller may not do this (or the account is not one they can see)."""

    status = 403
    code = "forbidden"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class SecretUndecryptable(ApiError):
    """Set the password again: no configured key decrypts the saved one."""

    status = 409
    code = "secret_undecryptable"


class InvalidRequest(ApiError):
    status = 422
    code = "invalid_request"


class VerificationFailed(ApiError):
    """The mail server refused the settings; ``failure`` says why and what to do."""

    status = 422
    code = "verification_failed"

    def __init__(self, failure: VerifyFailure):
        super().__init__(failure.message)
        self.failure = failure

    @property
    def retriable(self) -> bool:  # type: ignore[override]
        return self.failure.retriable


class Unavailable(ApiError):
    """A dependency did not answer; the request can be repeated."""

    status = 503
    code = "unavailable"
    retriable = True


class SignInFailed(ApiError):
    """The OAuth2 sign-in did not connect the account; nothing was saved."""

    status = 400
    code = "sign_in_failed"


class AccessDenied(SignInFailed):
    """The user refused consent at the provider: start again if that was a mistake."""

    status = 403
    code = "access_denied"


class InvalidState(SignInFailed):
    """The callback's ``state`` is unknown, used already or expired: start again."""

    status = 400
    code = "invalid_state"


class ProviderError(SignInFailed):
    """The provider answered the authorization request with an error."""

    status = 400
    code = "provider_error"


class TokenExchangeFailed(SignInFailed):
    """The token endpoint did not exchange the code: check the client id and secret."""

    status = 502
    code = "token_exchange_failed"

    def __init__(self, message: str, *, retriable: bool):
        super().__init__(message)
        self._retriable = retriable

    @property
    def retriable(self) -> bool:  # type: ignore[override]
        return self._retriable


class AddressUnknown(SignInFailed):
    """The provider named no address: give the mailbox's address when starting."""

    status = 422
    code = "address_unknown"


class ProviderNotConfigured(SignInFailed):
    """No client is configured for the provider: set its MAILSYNC_OAUTH2_* settings."""

    status = 422
    code = "provider_not_configured"
