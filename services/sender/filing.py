"""Filing a sent message in the account's Sent folder, so Outlook or Thunderbird shows it.

Servers that file sent mail themselves (Gmail does) already hold it: the folder is
searched by Message-ID first, and only a message not found is appended, with ``\\Seen``
(the user wrote it) and the time it was sent as its INTERNALDATE (RFC 3501 6.3.11).
Searching first also makes filing idempotent: after a crash between APPEND and the
ledger update, the next try finds our own copy instead of appending a second one.
"""

from __future__ import annotations

import datetime as dt
import ssl
from dataclasses import dataclass

from schemas.account import AccountRecord
from services.common.oauth2 import AccessToken
from services.fetcher.errors import AuthenticationFailed, FolderError, ImapUnavailable
from services.fetcher.folders import Folder, quote
from services.fetcher.session import ImapSession
from services.sender.errors import FilingFailed
from services.sender.sent_folder import sent_folder

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Filed:
    folder: Folder
    uidvalidity: int
    uid: int
    appended: bool  # False: the server (or an earlier try) had filed it already


class SentFiler:
    def __init__(self, *, timeout: float, ssl_context: ssl.SSLContext):
        self._timeout = timeout
        self._ssl = ssl_context

    async def file(
        self,
        account: AccountRecord,
        credential: str | AccessToken,
        message_id: str,
        message: bytes,
        sent_at: dt.datetime,
    ) -> Filed:
        try:
            async with ImapSession(
                account.imap, credential, timeout=self._timeout, ssl_context=self._ssl
            ) as imap:
                folders = await imap.list_folders()
                folder = sent_folder(folders, account.sent_folder)
                if folder is None:
                    wanted = account.sent_folder or "a folder marked \\Sent"
                    raise FilingFailed(f"no Sent folder: {wanted} not found on the server")
                found = await self._search(imap, folder, message_id, sent_at)
                if found is not None:
                    return Filed(folder, found[0], found[1], appended=False)
                appended = await imap.append(folder, message, "\\Seen", sent_at)
                if appended is None:  # no UIDPLUS: look our copy up
                    appended = await self._search(imap, folder, message_id, sent_at)
                    if appended is None:
                        raise FilingFailed("APPEND succeeded but the copy cannot be found")
                return Filed(folder, appended[0], appended[1], appended=True)
        except (AuthenticationFailed, FolderError, ImapUnavailable, OSError, TimeoutError) as exc:
            raise FilingFailed(f"filing in Sent failed: {exc}") from None

    async def find(
        self,
        account: AccountRecord,
        credential: str | AccessToken,
        message_id: str,
        sent_at: dt.datetime,
    ) -> Filed | None:
        """The message in Sent, if the server (or an earlier try) filed it."""
        try:
            async with ImapSession(
                account.imap, credential, timeout=self._timeout, ssl_context=self._ssl
            ) as imap:
                folder = sent_folder(await imap.list_folders(), account.sent_folder)
                if folder is None:
                    return None
                found = await self._search(imap, folder, message_id, sent_at)
                return Filed(folder, found[0], found[1], appended=False) if found else None
        except (AuthenticationFailed, FolderError, ImapUnavailable, OSError, TimeoutError) as exc:
            raise FilingFailed(f"looking in Sent failed: {exc}") from None

    @staticmethod
    async def _search(
        imap: ImapSession, folder: Folder, message_id: str, sent_at: dt.datetime
    ) -> tuple[int, int] | None:
        status = await imap.examine(folder)
        # RFC 3501 6.4.4: HEADER matches a substring; the angle brackets anchor it. SINCE
        # (by INTERNALDATE, which the server's index holds) keeps a Sent folder of years
        # from being read header by header on every send; a day's margin covers time zones.
        day = sent_at - dt.timedelta(days=1)
        since = f"{day.day}-{_MONTHS[day.month - 1]}-{day.year}"  # not strftime: locale
        uids = await imap.uid_search(f"SINCE {since} HEADER Message-ID {quote(message_id)}")
        return (status.uidvalidity, min(uids)) if uids else None
