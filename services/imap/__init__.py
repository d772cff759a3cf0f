"""IMAP for mailsync: the client session the fetcher syncs with, the sender files in Sent
with and the API verifies an account with; everything IMAP-specific lives here.

- :mod:`.session`        :class:`ImapSession`: connect (TLS or STARTTLS), log in, the
                         commands, close
- :mod:`.commands`       one module per command family (list, select, status,
                         list_status, search, fetch, store, move, idle, notify,
                         append; starttls, login, enable)
- :mod:`.tls_buffer`     a smaller TLS read buffer for connections that mostly wait
- :mod:`.protocol`       aioimaplib's protocol with its per-response costs removed, and
                         AUTHENTICATE for SASL mechanisms that answer challenges
- :mod:`.responses`      a command's tagged completion: OK, or the error it means
- :mod:`.errors`         what goes wrong, each with ``retriable``
- :mod:`.credentials`    what an account logs in with: its password or an access token
- pure parsers and writers:
  :mod:`.fetch_response` (FETCH, SEARCH), :mod:`.folder_status` (SELECT/EXAMINE,
  STATUS), :mod:`.folders` (LIST, quoted strings), :mod:`.copyuid` (COPYUID),
  :mod:`.mutf7` (folder names), :mod:`.dates` (INTERNALDATE, SEARCH dates),
  :mod:`.sequence_set` (UID sets)
"""

from services.imap.commands.idle import IdleNews
from services.imap.copyuid import CopyUid
from services.imap.credentials import Credentials
from services.imap.dates import search_date
from services.imap.errors import (
    AuthenticationFailed,
    FolderError,
    ImapUnavailable,
    InsecureConnection,
)
from services.imap.fetch_response import FetchedMessage, FlagUpdate
from services.imap.folder_status import FolderStatus
from services.imap.folders import Folder, quote, with_sent_folder
from services.imap.sequence_set import expand_uid_set, uid_list, uid_set
from services.imap.session import ImapSession

__all__ = [
    "AuthenticationFailed",
    "CopyUid",
    "Credentials",
    "FetchedMessage",
    "FlagUpdate",
    "Folder",
    "FolderError",
    "FolderStatus",
    "IdleNews",
    "ImapSession",
    "ImapUnavailable",
    "InsecureConnection",
    "expand_uid_set",
    "quote",
    "search_date",
    "uid_list",
    "uid_set",
    "with_sent_folder",
]
