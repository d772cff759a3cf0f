"""Which folder is the account's Sent folder? (pure)

The one the account names, else the one the server marks ``\\Sent`` (RFC 6154), so
"Sent Items", "Gesendet" and "Odeslaná pošta" are all found without guessing names.
"""

from __future__ import annotations

from collections.abc import Sequence

from schemas.common import FolderRole
from services.imap import Folder


def sent_folder(folders: Sequence[Folder], configured: str | None) -> Folder | None:
    if configured is not None:
        return next((f for f in folders if f.name == configured and f.selectable), None)
    return next((f for f in folders if f.role is FolderRole.SENT and f.selectable), None)
