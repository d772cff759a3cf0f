"""IMAP I/O for one account: a thin layer over aioimaplib; every decision lives elsewhere.

Logs in with LOGIN and a password, or with ``AUTHENTICATE XOAUTH2``/``OAUTHBEARER``
(RFC 7628) and an OAuth2 access token the caller got from the token provider.

Folders are opened with EXAMINE (read-only, RFC 3501 6.3.2) and bodies fetched with
``BODY.PEEK[]`` (6.4.5), so syncing never changes \\Seen or \\Recent in the mailbox.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import ssl
from types import TracebackType

import aioimaplib

from schemas.account import Endpoint, Security
from services.common import metrics
from services.common.loopback import is_loopback
from services.common.oauth2 import AccessToken, error_ack, initial_response
from services.imap.copyuid import CopyUid, parse_copyuid
from services.imap.errors import (
    AuthenticationFailed,
    FolderError,
    ImapUnavailable,
    InsecureConnection,
)
from services.imap.fetch_response import (
    FetchedMessage,
    FlagUpdate,
    parse_fetch,
    parse_flag_updates,
    parse_search,
)
from services.imap.folder_status import FolderStatus
from services.imap.folders import Folder, parse_list, quote
from services.imap.protocol import FastIMAP4
from services.imap.sequence_set import uid_set

log = logging.getLogger("mailsync.fetcher.imap")

FETCH_ITEMS = "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])"
_CODE = {
    name: re.compile(rb"\[" + name.encode() + rb" (\d+)\]")
    for name in ("UIDVALIDITY", "UIDNEXT", "HIGHESTMODSEQ")
}
_EXISTS = re.compile(rb"^(\d+) EXISTS")
_IDLE_NEWS = re.compile(rb"^\d+ (?:EXISTS|EXPUNGE|FETCH)\b")
_STATUS_ITEM = re.compile(rb"(MESSAGES|UIDNEXT|UIDVALIDITY|HIGHESTMODSEQ) (\d+)")
_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")


def _status_from_select(lines: list[bytes | bytearray]) -> FolderStatus:
    values: dict[str, int] = {}
    exists = 0
    for line in lines:
        raw = bytes(line)
        for name, pattern in _CODE.items():
            if m := pattern.search(raw):
                values[name] = int(m[1])
        if m := _EXISTS.match(raw):
            exists = int(m[1])
    if "UIDVALIDITY" not in values:
        raise ImapUnavailable("server did not send UIDVALIDITY on EXAMINE")
    return FolderStatus(
        uidvalidity=values["UIDVALIDITY"],
        uidnext=values.get("UIDNEXT", 1),
        exists=exists,
        highestmodseq=values.get("HIGHESTMODSEQ"),
    )


class ImapSession:
    """One authenticated IMAP connection. Use as ``async with ImapSession(...) as imap``."""

    def __init__(
        self,
        endpoint: Endpoint,
        credential: str | AccessToken,
        *,
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ):
        if endpoint.security is Security.PLAIN and not is_loopback(endpoint.host):
            raise InsecureConnection(
                f"plaintext IMAP to {endpoint.host} refused: use TLS or STARTTLS"
            )
        self.endpoint = endpoint
        self._credential = credential  # a password, or an OAuth2 access token
        self._timeout = timeout
        self._ssl = ssl_context or ssl.create_default_context()
        self._client: aioimaplib.IMAP4 | None = None
        self._counted = False  # in mailsync_imap_connections
        self.selected: str | None = None

    @property
    def client(self) -> aioimaplib.IMAP4:
        if self._client is None:
            raise ImapUnavailable("IMAP session is not open")
        return self._client

    @property
    def connected(self) -> bool:
        """False once the connection is gone (a kick, the server's idle timeout)."""
        transport = self._client.protocol.transport if self._client is not None else None
        return transport is not None and not transport.is_closing()

    def has(self, capability: str) -> bool:
        return bool(self.client.has_capability(capability))

    async def __aenter__(self) -> ImapSession:
        await self.open()
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def open(self) -> None:
        ep = self.endpoint
        client = FastIMAP4(
            ep.host,
            ep.port,
            timeout=self._timeout,
            ssl_context=self._ssl if ep.security is Security.TLS else None,
        )
        self._client = client
        await client.wait_hello_from_server()
        if ep.security is Security.STARTTLS:
            await self._starttls(client)
        credential, how = self._credential, "login"
        if isinstance(credential, AccessToken):
            how = f"{credential.mechanism} login"
            initial = initial_response(
                credential.mechanism, ep.username, credential.token, ep.host, ep.port
            )
            response = await asyncio.wait_for(
                client.protocol.authenticate(
                    credential.mechanism.value, initial, error_ack(credential.mechanism)
                ),
                self._timeout,
            )
        else:
            response = await client.login(ep.username, credential)
        if response.result != "OK":
            text = b" ".join(bytes(x) for x in response.lines).decode(errors="replace")
            if "AUTHENTICATIONFAILED" in text.upper() or response.result == "NO":
                raise AuthenticationFailed(f"IMAP {how} refused for {ep.username}: {text}")
            raise ImapUnavailable(f"IMAP {how} failed: {text}")
        metrics.imap_connected()
        self._counted = True
        # Capabilities change after login (RFC 3501 6.2.3: CONDSTORE, MOVE... appear now).
        await client.protocol.capability()
        if self.has("CONDSTORE") and self.has("ENABLE"):
            # RFC 7162 3.1: from now on EXAMINE reports HIGHESTMODSEQ, and flag changes
            # can be asked for with CHANGEDSINCE.
            await self._check(await client.enable("CONDSTORE"), "ENABLE CONDSTORE")

    async def _starttls(self, client: aioimaplib.IMAP4) -> None:
        """RFC 2595: STARTTLS, then a new TLS layer on the same socket, then CAPABILITY again."""
        protocol = client.protocol
        if "STARTTLS" not in protocol.capabilities:
            raise ImapUnavailable(f"{self.endpoint.host} does not offer STARTTLS")
        response = await protocol.execute(
            aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
        )
        if response.result != "OK":
            raise ImapUnavailable(f"STARTTLS refused: {response.lines}")
        loop = asyncio.get_running_loop()
        protocol.transport = await loop.start_tls(
            protocol.transport, protocol, self._ssl, server_hostname=self.endpoint.host
        )
        await protocol.capability()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        if self._counted:
            self._counted = False
            metrics.imap_disconnected()
        try:
            if client.get_state() in ("AUTH", "SELECTED"):
                await asyncio.wait_for(client.logout(), 5)
        except Exception as exc:  # the connection may already be gone; nothing to save
            log.debug("logout failed: %r", exc)
        finally:
            transport = client.protocol.transport
            if transport is not None:
                transport.close()

    async def _check(self, response: aioimaplib.Response, what: str) -> aioimaplib.Response:
        if response.result == "OK":
            return response
        text = b" ".join(bytes(x) for x in response.lines[-1:]).decode(errors="replace")
        if response.result == "BYE":
            raise ImapUnavailable(f"{what}: server said BYE: {text}")
        raise ImapUnavailable(f"{what} failed: {response.result} {text}")

    async def list_folders(self) -> list[Folder]:
        response = await self._check(await self.client.list('""', '"*"'), "LIST")
        return parse_list(response.lines)

    async def examine(self, folder: Folder) -> FolderStatus:
        if not folder.selectable:
            raise FolderError(folder.name, "folder cannot be selected (\\Noselect)")
        response = await self.client.protocol.simple_command("EXAMINE", quote(folder.wire_name))
        if response.result != "OK":
            self.selected = None
            text = b" ".join(bytes(x) for x in response.lines[-1:]).decode(errors="replace")
            if response.result == "NO":
                raise FolderError(folder.name, f"EXAMINE refused: {text}")
            await self._check(response, "EXAMINE")
        # aioimaplib tracks SELECT only; EXAMINE selects the folder read-only just the same.
        self.client.protocol.state = aioimaplib.SELECTED
        self.selected = folder.name
        return _status_from_select(response.lines)

    async def status(self, folder: Folder) -> FolderStatus:
        if self.selected == folder.name:
            # RFC 3501 6.3.10: STATUS SHOULD NOT be asked of the selected folder, and
            # Dovecot answers it from the open view, blind to the folder being deleted
            # and recreated meanwhile. EXAMINE again opens it afresh.
            return await self.examine(folder)
        items = "(MESSAGES UIDNEXT UIDVALIDITY" + (
            " HIGHESTMODSEQ)" if self.has("CONDSTORE") else ")"
        )
        response = await self.client.status(quote(folder.wire_name), items)
        if response.result == "NO":
            raise FolderError(folder.name, "STATUS refused")
        await self._check(response, "STATUS")
        values = {
            k.decode(): int(v)
            for line in response.lines
            for k, v in _STATUS_ITEM.findall(bytes(line))
        }
        return FolderStatus(
            uidvalidity=values.get("UIDVALIDITY", 0),
            uidnext=values.get("UIDNEXT", 1),
            exists=values.get("MESSAGES", 0),
            highestmodseq=values.get("HIGHESTMODSEQ"),
        )

    async def uid_search(self, criteria: str) -> list[int]:
        response = await self._check(
            await self.client.uid_search(criteria, charset=None), "UID SEARCH"
        )
        return parse_search(response.lines)

    async def uid_fetch(self, uids: list[int]) -> list[FetchedMessage]:
        response = await self._check(
            await self.client.uid("fetch", uid_set(uids), FETCH_ITEMS), "UID FETCH"
        )
        return parse_fetch(response.lines)

    async def headers(self, fields: str) -> list[FetchedMessage]:
        """``UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (...)])`` of the selected folder:
        each message's ``body`` is just those header lines (RFC 3501 6.4.5)."""
        items = f"(UID BODY.PEEK[HEADER.FIELDS ({fields})])"
        response = await self._check(
            await self.client.uid("fetch", "1:*", items), "UID FETCH HEADER.FIELDS"
        )
        return parse_fetch(response.lines)

    async def all_flags(self) -> list[FlagUpdate]:
        """``UID FETCH 1:* (UID FLAGS)``: every message's flags, for servers without
        CONDSTORE, whose flag changes can only be found by comparison."""
        response = await self._check(
            await self.client.uid("fetch", "1:*", "(UID FLAGS)"), "UID FETCH FLAGS"
        )
        return parse_flag_updates(response.lines)

    async def select(self, folder: Folder) -> FolderStatus:
        """SELECT read-write: only to act on processed mail, never to sync."""
        response = await self.client.select(quote(folder.wire_name))
        if response.result != "OK":
            raise FolderError(folder.name, f"SELECT refused: {response.lines[-1:]!r}")
        self.selected = folder.name
        return _status_from_select(response.lines)

    async def move(self, uids: list[int], target: Folder) -> CopyUid | None:
        """UID MOVE (RFC 6851), else COPY + \\Deleted + UID EXPUNGE (RFC 4315) of just these;
        returns where they went when the server said so (COPYUID)."""
        ids, dest = uid_set(uids), quote(target.wire_name)
        if self.has("MOVE"):
            moved = await self._check(await self.client.uid("move", ids, dest), "UID MOVE")
            return parse_copyuid(moved.lines)
        # Checked before copying: a copy left behind would be copied again on every retry.
        if not self.has("UIDPLUS"):
            raise ImapUnavailable("server has neither MOVE nor UIDPLUS: cannot move safely")
        copied = await self._check(await self.client.uid("copy", ids, dest), "UID COPY")
        await self.add_flags(uids, "\\Deleted")
        await self._check(await self.client.uid("expunge", ids), "UID EXPUNGE")
        return parse_copyuid(copied.lines)

    async def add_flags(self, uids: list[int], flags: str) -> None:
        response = await self.client.uid("store", uid_set(uids), "+FLAGS.SILENT", f"({flags})")
        await self._check(response, "UID STORE")

    async def flag_changes(self, last_uid: int, since_modseq: int) -> list[FlagUpdate]:
        """Flags of messages up to ``last_uid`` changed since ``since_modseq`` (RFC 7162)."""
        items = f"(UID FLAGS) (CHANGEDSINCE {since_modseq})"
        response = await self._check(
            await self.client.uid("fetch", f"1:{last_uid}", items), "UID FETCH CHANGEDSINCE"
        )
        return parse_flag_updates(response.lines)

    async def idle(self, seconds: float) -> bool:
        """IDLE (RFC 2177) on the selected folder for up to ``seconds``; True if the folder
        changed (mail arrived or left, flags changed)."""
        client = self.client
        if not self.has("IDLE"):
            await asyncio.sleep(seconds)
            return True
        idle = await client.idle_start(timeout=seconds)
        arrived = False
        try:
            while client.has_pending_idle():
                pushed = await client.wait_server_push(timeout=seconds + 5)
                if pushed == aioimaplib.STOP_WAIT_SERVER_PUSH:
                    break
                # New mail (EXISTS), mail gone (EXPUNGE), flags changed (FETCH).
                if any(_IDLE_NEWS.search(bytes(line)) for line in pushed):
                    arrived = True
                    break
        finally:
            if client.has_pending_idle():
                client.idle_done()
            await asyncio.wait_for(idle, self._timeout)
        return arrived

    async def append(
        self, folder: Folder, message: bytes, flags: str, when: dt.datetime
    ) -> tuple[int, int] | None:
        """APPEND (RFC 3501 6.3.11); (UIDVALIDITY, UID) from APPENDUID when the server has
        UIDPLUS (RFC 4315 3), else None and the caller searches for it."""
        response = await self.client.append(
            message, mailbox=quote(folder.wire_name), flags=flags, date=when
        )
        if response.result == "NO":
            text = b" ".join(bytes(x) for x in response.lines[-1:]).decode(errors="replace")
            raise FolderError(folder.name, f"APPEND refused: {text}")
        await self._check(response, "APPEND")
        for line in response.lines:
            if m := _APPENDUID.search(bytes(line)):
                return int(m[1]), int(m[2])
        return None
