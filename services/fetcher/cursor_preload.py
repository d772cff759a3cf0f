"""The cursors of the accounts a batch of account records is about to start, read at once.

Each worker reads its folders' cursors once, when it starts (:mod:`.account_cursors`):
two ``find_one`` per account of INBOX and Sent. When a replica takes over thousands of
accounts (a rebalance, a replica starting) those reads were the database's largest
share of the move's work (bench/scale.py: SecantusDB spent about as much CPU per moved
account as Dovecot, issue #16) and a tenth of the fetcher's. Here the account table
reads them for every account of a batch of records in a few ``$in`` queries by ``_id``,
and hands each starting worker its own.

Valid because the cursors of an account that is not running on this replica have no
writer until it starts here: the previous owner stopped it before the partition was
handed out (:mod:`.assignment`), and a resync drops cursors only once the account is
paused, a record that stops the worker this preload was for (and with it the preload).
A preload serves the worker's first run only: a retry goes on with the cursors the run
before left (:mod:`.worker_start`). A
folder it did not ask for (a name the worker meets that the record did not predict) is
read as before.
"""

from __future__ import annotations

from collections.abc import Sequence

from schemas.account import AccountRecord
from schemas.mailbox_state import FolderCursor
from services.fetcher.cursor import CursorStore, cursor_id

Known = dict[str, FolderCursor | None]  # folder name -> its cursor; None: it has none

# Folder names per account are few (INBOX, Sent). SecantusDB matches every cursor it
# finds against the whole $in list: at 20,000 cursors, 0.08 ms of its CPU a cursor with
# 20 ids per query, 0.11 with 50, 0.14 with 100 (each query costs the fetcher a round
# trip too, a fraction of an account's start).
ACCOUNTS_PER_QUERY = 10


def folder_names(record: AccountRecord) -> list[str]:
    """The names under which the account's worker will ask for its cursors (as
    ``Schedule._synced_folders`` names the chosen folders: INBOX in capitals)."""
    names = ["INBOX" if n.upper() == "INBOX" else n for n in record.folders]
    return list(dict.fromkeys(names))


async def preload(store: CursorStore, records: Sequence[AccountRecord]) -> dict[str, Known]:
    """Every folder cursor of ``records``' accounts, by account: a folder without one is
    present with None (known to have none)."""
    out: dict[str, Known] = {}
    for i in range(0, len(records), ACCOUNTS_PER_QUERY):
        chunk = records[i : i + ACCOUNTS_PER_QUERY]
        wanted = {
            cursor_id(r.account_id, name): (r.account_id, name)
            for r in chunk
            for name in folder_names(r)
        }
        found = await store.get_many(list(wanted))
        for key, (account_id, name) in wanted.items():
            out.setdefault(account_id, {})[name] = found.get(key)
    return out
