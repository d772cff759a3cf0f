"""Which failures end an account's retries and which are retried (pure).

Whether a failure is worth retrying is :mod:`services.common.retry`'s one rule; this only
adds what the account's state shows: a refused credential waits for new credentials,
any other permanent failure for the account record to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from services.common.retry import mailsync_error


class FailureVerdict(StrEnum):
    AUTH_FAILED = "auth_failed"  # stop until the credentials change
    CONFIG = "config"  # stop until the account record changes
    RETRY = "retry"  # back off and try again


@dataclass(frozen=True)
class Classified:
    verdict: FailureVerdict
    reason: str


def classify_failure(exc: BaseException) -> Classified:
    """Map an exception from an account's sync to what the supervisor should do."""
    from services.common.oauth2.errors import OAuth2Revoked
    from services.imap import AuthenticationFailed

    # A revoked refresh token is a refused credential like a wrong password.
    if isinstance(exc, AuthenticationFailed | OAuth2Revoked):
        return Classified(FailureVerdict.AUTH_FAILED, str(exc))
    error = mailsync_error(exc)
    if error is None:
        # An unknown failure: retry with backoff rather than give up on the mailbox.
        return Classified(FailureVerdict.RETRY, f"{type(exc).__name__}: {exc}")
    return Classified(
        FailureVerdict.RETRY if error.retriable else FailureVerdict.CONFIG, str(error)
    )
