"""A real SMTP server (aiosmtpd) that hands mail over to Dovecot's LMTP, as an MTA would.

Run as ``python -m devservers.smtp_server``. It speaks ESMTP with STARTTLS and AUTH
PLAIN/LOGIN (only after STARTTLS, RFC 4954 section 4), plus XOAUTH2 and OAUTHBEARER
(RFC 7628) when given ``--introspection-url`` (tokens checked by RFC 7662
introspection, as Dovecot does), accepts mail only for local
mailboxes and their aliases, and adds the trace headers a real MTA adds: ``Received``,
``X-Original-To`` (the address the sender used) and ``Delivered-To`` (the mailbox).

For tests of clients that keep sessions open: every successful login is counted per
user in a JSON file (``--logins``), and SIGUSR1 drops every connection with no mail
transaction under way, as a server timing out idle sessions (or restarting between
transactions) does. The fault ``lost-reply:<rcpt>`` delivers a message and then cuts
the connection before the final reply: RFC 1047's case, which no client can tell from
a message never delivered. The fault ``slow-reply:<rcpt>`` (its reply: seconds) delivers
and then holds the final reply that long, as a server scanning a message does: a client
killed meanwhile has a message delivered that it never heard of. The fault
``hold-data:<rcpt>`` (its reply: a file path) holds the DATA command itself, before its
354: the server writes the file and goes on only once the same path with ``.go`` added
exists (a test looks at the client's own state at the moment DATA reached the server).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import email.utils
import json
import signal
import smtplib
import ssl
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, Session, syntax


class Directory:
    """Mailbox users (Dovecot's passwd-file) and aliases (a JSON map), re-read on use."""

    def __init__(self, users: Path, aliases: Path):
        self.users_file, self.aliases_file = users, aliases

    def passwords(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for line in self.users_file.read_text().splitlines():
            name, _, rest = line.partition(":")
            out[name.lower()] = rest.split(":", 1)[0].removeprefix("{PLAIN}")
        return out

    def mailbox_for(self, address: str) -> str | None:
        address = address.lower()
        local, _, domain = address.partition("@")
        # RFC 5233 subaddressing: user+tag@ reaches user@.
        base = f"{local.split('+', 1)[0]}@{domain}"
        aliases: dict[str, str] = {}
        if self.aliases_file.exists():
            aliases = {
                k.lower(): v.lower() for k, v in json.loads(self.aliases_file.read_text()).items()
            }
        users = self.passwords()
        for candidate in (address, base):
            if candidate in users:
                return candidate
            if candidate in aliases:
                return aliases[candidate]
        return None


class Faults:
    """Replies the server gives a recipient instead of accepting it, N times (a JSON map
    ``{address: {"reply": "451 4.7.1 Greylisted", "times": 2}}``): greylisting, a full
    mailbox, a policy rejection, as real MTAs answer. Re-read and decremented on use."""

    def __init__(self, path: Path):
        self.path = path

    def take(self, address: str) -> str | None:
        if not self.path.exists():
            return None
        faults = json.loads(self.path.read_text() or "{}")
        fault = faults.get(address.lower())
        if not fault or fault.get("times", 0) <= 0:
            return None
        fault["times"] -= 1
        self.path.write_text(json.dumps(faults))
        return str(fault["reply"])


class Logins:
    """Successful AUTHs per user, in a JSON map ``{user: count}`` (read by tests)."""

    def __init__(self, path: Path):
        self.path = path

    def count(self, user: str) -> None:
        counts = json.loads(self.path.read_text() or "{}") if self.path.exists() else {}
        counts[user.lower()] = counts.get(user.lower(), 0) + 1
        self.path.write_text(json.dumps(counts))


class TrackedSMTP(SMTP):
    """aiosmtpd's SMTP, keeping a set of its open connections so they can be dropped."""

    def __init__(self, *args: Any, live: set[TrackedSMTP], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._live = live

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # again after STARTTLS: the set keeps one
        self._live.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self._live.discard(self)
        super().connection_lost(error)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        handler = self.event_handler
        if self.envelope is not None and isinstance(handler, LmtpHandoff):
            for rcpt in self.envelope.rcpt_tos:
                if (marker := handler.faults.take(f"hold-data:{rcpt}")) is not None:
                    await _hold(Path(marker))
        await super().smtp_DATA(arg)

    def drop_if_idle(self) -> None:
        """Cut the connection, unless a mail transaction (MAIL FROM up to the end of
        DATA) is under way."""
        if self.envelope is None or self.envelope.mail_from is None:
            self.abort()

    def abort(self) -> None:
        """Cut the TCP connection (under any TLS layer) with no goodbye."""
        transport = self._original_transport or self.transport
        if isinstance(transport, asyncio.Transport):
            transport.abort()


async def _hold(marker: Path, limit_s: float = 120.0) -> None:
    """Say so in ``marker`` and wait for ``marker.go`` (at most ``limit_s``)."""
    await asyncio.to_thread(marker.write_text, "DATA")
    go = marker.with_name(marker.name + ".go")
    for _ in range(int(limit_s / 0.05)):
        if await asyncio.to_thread(go.exists):
            return
        await asyncio.sleep(0.05)


class LmtpHandoff:
    """aiosmtpd handler: accept local recipients, deliver each mailbox over LMTP."""

    def __init__(
        self, directory: Directory, lmtp_port: int, hostname: str, faults: Faults, logins: Logins
    ):
        self.directory, self.lmtp_port, self.hostname = directory, lmtp_port, hostname
        self.faults, self.logins = faults, logins

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        # A session that already carried a message may be told its login ran out (the
        # fault "again:<sender>"), as servers do when an OAuth2 token expires mid-session.
        if getattr(session, "messages", 0) and (fault := self.faults.take(f"again:{address}")):
            return fault
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if (fault := self.faults.take(address)) is not None:
            return fault
        if self.directory.mailbox_for(address) is None:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        by_mailbox: dict[str, list[str]] = {}
        for rcpt in envelope.rcpt_tos:
            mailbox = self.directory.mailbox_for(rcpt)
            if mailbox is not None:
                by_mailbox.setdefault(mailbox, []).append(rcpt)
        try:
            await asyncio.to_thread(self._deliver_all, session, envelope, content, by_mailbox)
        except (OSError, smtplib.SMTPException) as exc:
            return f"451 4.3.0 Mailbox delivery failed, try again later ({exc})"
        session.messages = getattr(session, "messages", 0) + 1  # type: ignore[attr-defined]
        if isinstance(server, TrackedSMTP) and any(
            self.faults.take(f"lost-reply:{rcpt}") for rcpt in envelope.rcpt_tos
        ):
            server.abort()  # delivered, but the client never hears so
        for rcpt in envelope.rcpt_tos:
            if (hold := self.faults.take(f"slow-reply:{rcpt}")) is not None:
                await asyncio.sleep(float(hold))
        return "250 2.0.0 Delivered"

    def _deliver_all(
        self, session: Session, envelope: Envelope, content: bytes, by_mailbox: dict[str, list[str]]
    ) -> None:
        peer = session.peer[0] if isinstance(session.peer, tuple) else "unknown"
        received = (
            f"Received: from {session.host_name or 'unknown'} ([{peer}])\r\n"
            f"\tby {self.hostname} (mailsync dev SMTP) with ESMTP{'S' if session.ssl else ''}"
            f"{'A' if session.authenticated else ''};\r\n\t{email.utils.formatdate()}\r\n"
        )
        with smtplib.LMTP("127.0.0.1", self.lmtp_port) as lmtp:
            for mailbox, rcpts in by_mailbox.items():
                # Dovecot LMTP adds Delivered-To itself; X-Original-To keeps the alias used.
                trace = f"X-Original-To: {', '.join(rcpts)}\r\n"
                lmtp.sendmail(
                    envelope.mail_from or "", [mailbox], (trace + received).encode() + content
                )


class OAuth2LmtpHandoff(LmtpHandoff):
    """:class:`LmtpHandoff` that also offers AUTH XOAUTH2 and OAUTHBEARER (aiosmtpd finds
    ``auth_*`` methods on the handler)."""

    def __init__(
        self,
        directory: Directory,
        lmtp_port: int,
        hostname: str,
        faults: Faults,
        logins: Logins,
        introspection: str,
    ):
        super().__init__(directory, lmtp_port, hostname, faults, logins)
        self.introspection = introspection

    def _active_user(self, token: str) -> str | None:
        """RFC 7662: POST the token; the user it belongs to if it is active."""
        body = urllib.parse.urlencode({"token": token}).encode()
        with urllib.request.urlopen(self.introspection, body, timeout=10) as response:
            data = json.loads(response.read())
        return str(data.get("email", "")).lower() if data.get("active") is True else None

    async def _bearer(self, server: SMTP, args: list[str], mechanism: str) -> AuthResult:
        if len(args) > 1:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except binascii.Error:
                return AuthResult(success=False, handled=False, message="501 5.5.2 Bad base64")
        else:  # no initial response: ask for it with an empty challenge (RFC 4954)
            answer = await server.challenge_auth("", encode_to_b64=False)
            if answer is MISSING:
                return AuthResult(success=False, handled=True)
            blob = answer
        fields = dict(
            part.split("=", 1)
            for part in blob.decode(errors="replace").split("\x01")
            if "=" in part
        )
        if mechanism == "OAUTHBEARER":  # RFC 7628 3.1: "n,a=user," then the pairs
            header = blob.split(b"\x01", 1)[0].decode(errors="replace")
            user = next((p[2:] for p in header.split(",") if p.startswith("a=")), "")
            user = user.replace("=2C", ",").replace("=3D", "=")
        else:
            user = fields.get("user", "")
        token = fields.get("auth", "").removeprefix("Bearer ")
        owner = await asyncio.to_thread(self._active_user, token) if token else None
        if owner is not None and owner == user.lower():
            self.logins.count(user)
            return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
        # The error challenge (RFC 7628 3.2.2); the client's answer ends the exchange.
        error = {"status": "invalid_token", "schemes": "bearer", "scope": ""}
        if await server.challenge_auth(json.dumps(error)) is MISSING:
            return AuthResult(success=False, handled=True)
        return AuthResult(success=False, handled=False)

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._bearer(server, args, "XOAUTH2")

    async def auth_OAUTHBEARER(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._bearer(server, args, "OAUTHBEARER")


def _authenticator(directory: Directory, logins: Logins) -> Any:
    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode().lower()
        ok = directory.passwords().get(login) == auth_data.password.decode()
        if ok:
            logins.count(login)
        return AuthResult(success=ok, handled=False)

    return authenticate


async def serve(args: argparse.Namespace) -> None:
    directory = Directory(Path(args.users), Path(args.aliases))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(args.cert, args.key)
    faults = Faults(Path(args.faults))
    logins = Logins(Path(args.logins))
    handler = (
        OAuth2LmtpHandoff(
            directory, args.lmtp_port, args.hostname, faults, logins, args.introspection_url
        )
        if args.introspection_url
        else LmtpHandoff(directory, args.lmtp_port, args.hostname, faults, logins)
    )
    live: set[TrackedSMTP] = set()

    def factory() -> SMTP:
        return TrackedSMTP(
            handler,
            live=live,
            hostname=args.hostname,
            tls_context=tls,
            require_starttls=False,
            auth_require_tls=True,
            auth_required=False,
            authenticator=_authenticator(directory, logins),
            data_size_limit=64 * 1024 * 1024,
        )

    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, "127.0.0.1", args.port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def drop_idle() -> None:
        for connection in list(live):
            connection.drop_if_idle()

    loop.add_signal_handler(signal.SIGUSR1, drop_idle)
    print(f"smtp listening on 127.0.0.1:{args.port}", flush=True)
    await stop.wait()
    server.close()
    await server.wait_closed()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--lmtp-port", type=int, required=True)
    parser.add_argument("--users", required=True)
    parser.add_argument("--aliases", required=True)
    parser.add_argument("--faults", required=True)
    parser.add_argument("--logins", required=True, help="JSON file: logins per user")
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--hostname", default="mx.localhost")
    parser.add_argument("--introspection-url", default=None, help="OAuth2 (RFC 7662)")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
