"""Launcher for the dev SMTP server (see :mod:`devservers.smtp_server`)."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from types import TracebackType

from devservers._dovecot import DovecotServer
from devservers._process import ChildProcess, free_port, port_answers, wait_until


class SmtpServer:
    """SMTP with AUTH and STARTTLS on loopback, delivering into ``dovecot``; OAuth2
    logins too when Dovecot has an introspection URL."""

    def __init__(self, dovecot: DovecotServer):
        self.dovecot = dovecot
        self.port = free_port()
        self.aliases_file = dovecot.root / "aliases.json"
        self.faults_file = dovecot.root / "smtp-faults.json"
        self.logins_file = dovecot.root / "smtp-logins.json"
        self._proc: ChildProcess | None = None

    def start(self, timeout: float = 30) -> SmtpServer:
        cert = self.dovecot.cert
        assert cert is not None, "start Dovecot first"
        if not self.aliases_file.exists():
            self.aliases_file.write_text("{}")
        self._proc = ChildProcess(
            "smtp",
            [
                sys.executable,
                "-m",
                "devservers.smtp_server",
                "--port",
                str(self.port),
                "--lmtp-port",
                str(self.dovecot.lmtp_port),
                "--users",
                str(self.dovecot.users_file),
                "--aliases",
                str(self.aliases_file),
                "--faults",
                str(self.faults_file),
                "--logins",
                str(self.logins_file),
                "--cert",
                str(cert.cert),
                "--key",
                str(cert.key),
                *(
                    ["--introspection-url", self.dovecot.oauth2_introspection_url]
                    if self.dovecot.oauth2_introspection_url
                    else []
                ),
            ],
            self.dovecot.root / "smtp.log",
        )
        self._proc.start()
        wait_until(
            port_answers(self.port, b"220"), timeout=timeout, what="SMTP", log=self._proc.log
        )
        return self

    def add_alias(self, alias: str, mailbox: str) -> None:
        """Route ``alias`` to ``mailbox`` (read by the server on every RCPT)."""
        aliases = json.loads(self.aliases_file.read_text()) if self.aliases_file.exists() else {}
        aliases[alias.lower()] = mailbox.lower()
        self.aliases_file.write_text(json.dumps(aliases))

    def fail_rcpt(self, address: str, reply: str, times: int = 1) -> None:
        """Answer RCPT TO:<address> with ``reply`` (e.g. ``451 4.7.1 Greylisted``) the next
        ``times`` times, then accept it again."""
        faults = json.loads(self.faults_file.read_text()) if self.faults_file.exists() else {}
        faults[address.lower()] = {"reply": reply, "times": times}
        self.faults_file.write_text(json.dumps(faults))

    def expire_sessions(self, sender: str, reply: str, times: int = 1) -> None:
        """Answer MAIL FROM:<sender> with ``reply`` (e.g. ``535 5.7.8 Token expired``) the
        next ``times`` times it comes over a session that already carried a message."""
        self.fail_rcpt(f"again:{sender}", reply, times)

    def lose_reply(self, address: str, times: int = 1) -> None:
        """Deliver the next ``times`` messages to ``address``, then cut the connection
        before the reply to DATA (RFC 1047: the client cannot know it was delivered)."""
        self.fail_rcpt(f"lost-reply:{address}", "cut", times)

    def slow_reply(self, address: str, seconds: float, times: int = 1) -> None:
        """Deliver the next ``times`` messages to ``address``, then hold the reply to
        DATA for ``seconds`` (a client killed meanwhile never hears it was delivered)."""
        self.fail_rcpt(f"slow-reply:{address}", str(seconds), times)

    def hold_data(self, address: str, marker: Path) -> None:
        """Hold the next DATA command of a message to ``address``, before its 354: the
        server writes ``marker`` and goes on once ``marker`` + ``.go`` exists."""
        self.fail_rcpt(f"hold-data:{address}", str(marker), 1)

    def logins(self, user: str) -> int:
        """How many times ``user`` has logged in (AUTH succeeded) so far."""
        if not self.logins_file.exists():
            return 0
        return int(json.loads(self.logins_file.read_text() or "{}").get(user.lower(), 0))

    def drop_idle_connections(self) -> None:
        """Cut every SMTP connection with no mail transaction under way (the server
        stays up), as a server timing out idle sessions does."""
        assert self._proc is not None, "not started"
        self._proc.send_signal(signal.SIGUSR1)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop()

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
