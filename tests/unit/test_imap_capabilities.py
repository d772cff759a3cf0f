"""Capabilities the server volunteers (RFC 3501 7.1): what is taken, and what is not."""

from __future__ import annotations

import asyncio

import aioimaplib

from services.imap.capabilities import adopt, capability_code

GREETING = (
    b"OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ "
    b"AUTH=PLAIN] Dovecot ready."
)
LOGGED_IN = (
    b"[CAPABILITY IMAP4rev1 SASL-IR ID ENABLE IDLE SORT CONDSTORE QRESYNC NOTIFY "
    b"LIST-STATUS MOVE SPECIAL-USE] Logged in"
)


def test_the_greetings_code_is_the_capability_list() -> None:
    assert capability_code(GREETING) == [
        "IMAP4rev1",
        "SASL-IR",
        "LOGIN-REFERRALS",
        "ID",
        "ENABLE",
        "IDLE",
        "LITERAL+",
        "AUTH=PLAIN",
    ]


def test_no_code_or_no_imap_version_is_no_list() -> None:
    assert capability_code(b"OK Dovecot ready.") is None
    assert capability_code(b"OK Logged in") is None
    assert capability_code(b"OK [ALERT] [CAPABILITY is down for maintenance] hi") is None
    assert capability_code(b"OK [CAPABILITY]") is None


def test_adopted_capabilities_replace_the_connections() -> None:
    loop = asyncio.new_event_loop()
    try:
        protocol = aioimaplib.IMAP4ClientProtocol(loop, None)
        protocol.capabilities = {"IMAP4rev1", "AUTH=PLAIN", "LOGINDISABLED"}
        assert adopt(protocol, LOGGED_IN)
        assert "NOTIFY" in protocol.capabilities and "CONDSTORE" in protocol.capabilities
        assert "LOGINDISABLED" not in protocol.capabilities
        assert protocol.imap_version == "IMAP4REV1"
        before = set(protocol.capabilities)
        assert not adopt(protocol, b"Logged in")
        assert protocol.capabilities == before
    finally:
        loop.close()
