"""Which failures end an account's retries and which are retried."""

from __future__ import annotations

import ssl

import pytest

from services.common.errors import ConfigurationError, TransientError
from services.common.retry import backoff_delay
from services.fetcher.classify import FailureVerdict, classify_failure
from services.imap.errors import (
    AuthenticationFailed,
    FolderError,
    ImapUnavailable,
    InsecureConnection,
)
from tests.fixtures.tls_errors import cert_error


@pytest.mark.parametrize(
    ("exc", "verdict"),
    [
        (AuthenticationFailed("LOGIN failed"), FailureVerdict.AUTH_FAILED),
        (ImapUnavailable("server said BYE"), FailureVerdict.RETRY),
        (TransientError("broker away"), FailureVerdict.RETRY),
        (ConnectionRefusedError(111, "Connection refused"), FailureVerdict.RETRY),
        (ConnectionResetError(104, "Connection reset by peer"), FailureVerdict.RETRY),
        (TimeoutError(), FailureVerdict.RETRY),
        (EOFError(), FailureVerdict.RETRY),
        (InsecureConnection("plaintext IMAP to imap.example.com"), FailureVerdict.CONFIG),
        (ConfigurationError("MAILSYNC_X is not set"), FailureVerdict.CONFIG),
        (FolderError("Sent", "gone"), FailureVerdict.CONFIG),
        (cert_error(), FailureVerdict.CONFIG),
        (RuntimeError("who knows"), FailureVerdict.RETRY),
    ],
)
def test_classify_failure(exc: BaseException, verdict: FailureVerdict) -> None:
    assert classify_failure(exc).verdict is verdict


def test_auth_failure_reason_is_the_server_message() -> None:
    assert classify_failure(AuthenticationFailed("LOGIN failed")).reason == "LOGIN failed"


def test_certificate_reason_names_the_verification_failure() -> None:
    reason = classify_failure(cert_error("self-signed certificate")).reason
    assert "self-signed certificate" in reason


def test_os_error_reason_names_the_exception() -> None:
    reason = classify_failure(ConnectionRefusedError(111, "Connection refused")).reason
    assert reason.startswith("ConnectionRefusedError")
    assert "Connection refused" in reason


def test_empty_timeout_reason_has_no_dangling_colon() -> None:
    assert classify_failure(TimeoutError()).reason == "TimeoutError"


def test_other_ssl_errors_are_retried() -> None:
    assert classify_failure(ssl.SSLError(1, "record layer failure")).verdict is FailureVerdict.RETRY


def test_certificate_error_raised_from_python_code() -> None:
    exc = ssl.CertificateError("hostname 'imap.example.com' doesn't match 'mail.example.org'")
    assert classify_failure(exc).verdict is FailureVerdict.CONFIG


def test_backoff_grows_exponentially() -> None:
    delays = [backoff_delay(n, base=1.0, cap=1000.0, jitter=0.0) for n in range(1, 6)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_backoff_attempt_zero_is_the_base() -> None:
    assert backoff_delay(0, base=2.0, cap=100.0, jitter=0.0) == 2.0


def test_backoff_is_capped() -> None:
    assert backoff_delay(20, base=1.0, cap=300.0, jitter=0.0) == 300.0


def test_backoff_jitter_shortens_by_at_most_half() -> None:
    assert backoff_delay(3, base=1.0, cap=300.0, jitter=0.5) == 3.0
    assert 150.0 < backoff_delay(50, base=1.0, cap=300.0, jitter=0.999) < 300.0


def test_backoff_stays_capped_after_many_attempts() -> None:
    assert backoff_delay(1025, base=1.0, cap=300.0, jitter=0.0) == 300.0
