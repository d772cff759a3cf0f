"""The dev mail servers behave like real ones, checked with real clients (swaks, imaplib)."""

from __future__ import annotations

import imaplib
import ssl
import subprocess

import pytest

from devservers import DovecotServer, SmtpServer
from tests.fixtures.pipeline import Env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def swaks(smtp: SmtpServer, *args: str) -> subprocess.CompletedProcess[str]:
    assert smtp.dovecot.cert is not None
    return subprocess.run(
        [
            "swaks",
            "--server",
            f"127.0.0.1:{smtp.port}",
            "--tls",
            "--tls-verify",
            "--tls-ca-path",
            str(smtp.dovecot.cert.cert),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def imap_client(dovecot: DovecotServer, user: str, password: str) -> imaplib.IMAP4_SSL:
    assert dovecot.cert is not None
    tls = ssl.create_default_context(cafile=str(dovecot.cert.cert))
    client = imaplib.IMAP4_SSL("127.0.0.1", dovecot.imaps_port, ssl_context=tls)
    client.login(user, password)
    return client


def test_swaks_with_starttls_and_auth_reaches_the_alias_mailbox(env: Env) -> None:
    info = env.mail_user("info")
    alias = info.address.replace("info-", "orders-")
    env.smtp.add_alias(alias, info.address)
    done = swaks(
        env.smtp,
        "--to",
        alias,
        "--from",
        info.address,
        "--auth",
        "PLAIN",
        "--auth-user",
        info.address,
        "--auth-password",
        info.password,
        "--header",
        "Subject: swaks check",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "235" in done.stdout  # AUTH accepted (RFC 4954)

    client = imap_client(env.dovecot, info.address, info.password)
    try:
        client.select("INBOX", readonly=True)
        _, data = client.uid("FETCH", "1:*", "(BODY.PEEK[HEADER])")
        header = data[0][1].decode()
    finally:
        client.logout()
    assert "Subject: swaks check" in header
    assert f"X-Original-To: {alias}" in header
    assert f"Delivered-To: {info.address}" in header


def test_wrong_smtp_password_is_refused(env: Env) -> None:
    user = env.mail_user("bob")
    done = swaks(
        env.smtp,
        "--to",
        user.address,
        "--auth",
        "PLAIN",
        "--auth-user",
        user.address,
        "--auth-password",
        "not-the-password",
    )
    assert done.returncode != 0
    assert "535" in done.stdout


def test_unknown_recipient_is_rejected(env: Env) -> None:
    done = swaks(env.smtp, "--to", "nobody-here@example.com", "--from", "x@example.net")
    assert done.returncode != 0
    assert "550" in done.stdout


def test_doveadm_changes_uidvalidity_as_clients_see_it(env: Env) -> None:
    user = env.mail_user("carol")
    env.dovecot.deliver(user.address, b"Subject: one\r\nMessage-ID: <one@x>\r\n\r\nbody\r\n")
    env.dovecot.set_uidvalidity(user.address, "INBOX", 4242)
    client = imap_client(env.dovecot, user.address, user.password)
    try:
        _, data = client.status("INBOX", "(UIDVALIDITY MESSAGES)")
    finally:
        client.logout()
    assert b"UIDVALIDITY 4242" in data[0]
    assert b"MESSAGES 1" in data[0]
