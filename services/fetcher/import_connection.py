"""A second connection for a large import, and the account's count of open connections.

A folder's first import (or any pass with many messages left) fetches on two IMAP
connections at once when it has more than ``fetcher_second_connection_from`` messages
to fetch (0, the default, never: on loopback and 2 cores it measured no faster than
one, bench/RESULTS.md, Pipeline; a server farther away is where it could pay) and the
account holds fewer connections than its cap
(:mod:`.ordered_fetch` keeps raw-messages in UID order). The second one logs in through
the server's login pacer like any other, examines the folder, and is closed as soon as
the folder's new mail is published, so an idle account keeps one connection (issue
#16). Servers limit connections per user (Dovecot's ``mail_max_userip_connections``,
10 by default; Gmail 15): a second login refused, or anything else that keeps it from
being usable, only means the import goes on with one.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from services.imap import Folder, ImapSession

log = logging.getLogger("mailsync.fetcher.worker")


class Connections:
    """The IMAP connections one account holds, against its cap."""

    def __init__(
        self,
        account_id: str,
        *,
        connect: Callable[[], ImapSession],
        admit: Callable[[], Awaitable[None]],
        cap: int,
        second_from: int,
    ):
        self._account_id = account_id
        self._connect = connect
        self._admit = admit
        self._cap = cap
        self._second_from = second_from
        self.open = 0

    @contextlib.asynccontextmanager
    async def session(
        self, admitted: Callable[[], Awaitable[None]] | None = None
    ) -> AsyncIterator[ImapSession]:
        """A connection, logged in once the server's login pacer admits it
        (:mod:`.login_pacer`: after a server restart, the accounts' logins are spread);
        ``admitted`` is called then."""
        await self._admit()
        if admitted is not None:
            await admitted()
        async with self._connect() as imap:
            self.open += 1
            try:
                yield imap
            finally:
                self.open -= 1

    def second_wanted(self, left: int) -> bool:
        """A second connection for ``left`` messages to fetch: more than the setting's
        (0: never), and one more connection within the account's cap."""
        return 0 < self._second_from < left and self.open < self._cap

    async def second(self, folder: Folder, uidvalidity: int) -> ImapSession | None:
        """A second connection with ``folder`` examined under ``uidvalidity``, counted
        among the account's; None when it cannot be had. The caller closes it with
        :meth:`release`."""
        self.open += 1  # reserved while it logs in: the cap holds meanwhile too
        imap: ImapSession | None = None
        try:
            await self._admit()
            imap = self._connect()
            await imap.open()
            status = await imap.examine(folder)
            if status.uidvalidity != uidvalidity:  # renumbered meanwhile: UIDs differ
                raise ValueError(f"UIDVALIDITY {status.uidvalidity}, not {uidvalidity}")
            return imap
        except Exception as exc:
            log.info(
                "%s/%s: importing on one connection, a second was not had: %s",
                self._account_id,
                folder.name,
                exc,
            )
            self.open -= 1
            if imap is not None:
                await imap.close()
            return None
        except BaseException:
            self.open -= 1
            if imap is not None:
                await imap.close()
            raise

    async def release(self, imap: ImapSession) -> None:
        """Close a connection :meth:`second` gave."""
        self.open -= 1
        await imap.close()
