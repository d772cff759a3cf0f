"""Telling an implicit-TLS port from a greeting (pure), and the failure it becomes."""

from __future__ import annotations

from services.api.tls_probe import client_hello, speaks_tls
from services.api.verify_errors import FailureCode, ImplicitTlsPort, classify


def test_a_tls_record_is_not_a_greeting() -> None:
    assert speaks_tls(b"\x16\x03\x03\x00\x7a\x02")  # a ServerHello's handshake record
    assert speaks_tls(b"\x15\x03\x01\x00\x02\x02\x46")  # an alert
    assert not speaks_tls(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] Dovecot ready.\r\n")
    assert not speaks_tls(b"220 smtp.example.com ESMTP\r\n")
    assert not speaks_tls(b"") and not speaks_tls(b"\x16")
    hello = client_hello("imap.example.com")
    assert hello[:2] == b"\x16\x03" and b"imap.example.com" in hello  # with its SNI


def test_an_implicit_tls_port_names_the_setting_to_change() -> None:
    failure = classify(ImplicitTlsPort(993), "imap")
    assert failure.code is FailureCode.IMPLICIT_TLS and not failure.retriable
    assert failure.message == (
        "IMAP: port 993 speaks TLS from the first byte: set security to tls "
        "(implicit TLS, RFC 8314)"
    )
    assert "set security to tls" in failure.hint and "587" in failure.hint
