"""The one retry rule: which failures are retried, and the backoff before each retry."""

from __future__ import annotations

import ssl

import aioimaplib
import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    NotLeaderForPartitionError,
    RequestTimedOutError,
    TopicAuthorizationFailedError,
)
from gridfs.errors import NoFile
from pymongo.errors import (
    AutoReconnect,
    DuplicateKeyError,
    NetworkTimeout,
    NotPrimaryError,
    OperationFailure,
    ServerSelectionTimeoutError,
)

from services.common.errors import (
    CertificateRejected,
    ConfigurationError,
    MailsyncError,
    TransientError,
)
from services.common.oauth2.errors import OAuth2Revoked, OAuth2Unavailable
from services.common.retry import backoff, backoff_delay, is_retriable, mailsync_error
from services.imap.errors import AuthenticationFailed, FolderError, ImapUnavailable
from services.sender.errors import SmtpFailure
from tests.fixtures.tls_errors import cert_error


@pytest.mark.parametrize(
    "exc",
    [
        TransientError("broker away"),
        ImapUnavailable("server said BYE"),
        OAuth2Unavailable("token endpoint answered HTTP 503"),
        SmtpFailure("451 try later", retriable=True),
        ConnectionRefusedError(111, "Connection refused"),
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError(),
        EOFError(),
        ssl.SSLError(1, "record layer failure"),
        aioimaplib.Abort("connection lost"),
        aioimaplib.CommandTimeout("UID FETCH"),
        AutoReconnect("connection closed"),
        NotPrimaryError("not primary"),
        NetworkTimeout("timed out"),
        ServerSelectionTimeoutError("no servers"),
        OperationFailure("stepped down", details={"errorLabels": ["RetryableWriteError"]}),
        OperationFailure("conflict", details={"errorLabels": ["TransientTransactionError"]}),
        KafkaConnectionError("broker away"),
        KafkaTimeoutError(),
        NotLeaderForPartitionError(),
        RequestTimedOutError(),
    ],
)
def test_a_dependency_away_is_retried(exc: BaseException) -> None:
    assert is_retriable(exc)


@pytest.mark.parametrize(
    "exc",
    [
        MailsyncError("no"),
        ConfigurationError("MAILSYNC_X is not set"),
        AuthenticationFailed("LOGIN failed"),
        OAuth2Revoked("invalid_grant"),
        FolderError("Sent", "gone"),
        SmtpFailure("550 no such user", retriable=False),
        cert_error(),
        ssl.CertificateError("hostname 'imap.example.com' doesn't match 'mail.example.org'"),
        OperationFailure("not authorized", code=13),
        DuplicateKeyError("E11000"),
        NoFile("gone"),
        TopicAuthorizationFailedError(),
        RuntimeError("who knows"),
        ValueError("bad input"),
    ],
)
def test_a_refusal_or_an_unknown_failure_is_not(exc: BaseException) -> None:
    assert not is_retriable(exc)


def test_mailsync_errors_are_their_own_verdict() -> None:
    exc = SmtpFailure("451 try later", retriable=True)
    assert mailsync_error(exc) is exc


def test_a_foreign_failure_maps_to_a_transient_error_naming_it() -> None:
    exc = ConnectionRefusedError(111, "Connection refused")
    mapped = mailsync_error(exc)
    assert isinstance(mapped, TransientError)
    assert str(mapped) == "ConnectionRefusedError: [Errno 111] Connection refused"
    assert mapped.__cause__ is exc
    assert str(mailsync_error(TimeoutError())) == "TimeoutError"


def test_a_certificate_that_does_not_verify_is_rejected_naming_why() -> None:
    mapped = mailsync_error(cert_error("self-signed certificate"))
    assert isinstance(mapped, CertificateRejected)
    assert str(mapped) == "TLS certificate rejected: self-signed certificate"


def test_what_is_not_known_here_is_not_mapped() -> None:
    assert mailsync_error(RuntimeError("who knows")) is None
    assert mailsync_error(OperationFailure("not authorized", code=13)) is None


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    delays = [backoff_delay(n, base=0.5, cap=6.0, jitter=0.0) for n in range(0, 7)]
    assert delays == [0.5, 0.5, 1.0, 2.0, 4.0, 6.0, 6.0]


def test_backoff_jitter_takes_off_at_most_half() -> None:
    assert backoff_delay(4, base=1.0, cap=100.0, jitter=0.0) == 8.0
    assert backoff_delay(4, base=1.0, cap=100.0, jitter=0.5) == 6.0
    assert 4.0 < backoff_delay(4, base=1.0, cap=100.0, jitter=0.999_999) < 4.001


@pytest.mark.parametrize(("attempt", "full"), [(1, 2.0), (3, 8.0), (10, 30.0), (5000, 30.0)])
def test_backoff_is_random_within_half_and_all_of_the_delay(attempt: int, full: float) -> None:
    delays = [backoff(attempt, base=2.0, cap=30.0) for _ in range(2000)]
    assert all(full / 2 <= d <= full for d in delays)
    # Spread over the whole range, not one value: retries of clients that failed
    # together do not come together.
    assert min(delays) < full * 0.55
    assert max(delays) > full * 0.95
