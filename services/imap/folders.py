"""LIST responses to folders with their RFC 6154 roles (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from schemas.common import FolderRole
from services.imap import mutf7

# (flags) "delimiter" name   -- RFC 3501 section 7.2.2; name may be quoted or an atom.
_LIST_LINE = re.compile(rb'^\((?P<flags>[^)]*)\) (?P<delim>"(?:[^"\\]|\\.)*"|NIL) (?P<name>.+)$')

_ROLES = {
    "\\sent": FolderRole.SENT,
    "\\trash": FolderRole.TRASH,
    "\\junk": FolderRole.JUNK,
    "\\archive": FolderRole.ARCHIVE,
    "\\all": FolderRole.ARCHIVE,
    "\\drafts": FolderRole.DRAFTS,
}


@dataclass(frozen=True)
class Folder:
    name: str  # decoded
    wire_name: str  # modified UTF-7, as the server knows it
    flags: frozenset[str]
    role: FolderRole

    @property
    def selectable(self) -> bool:
        return not ({"\\noselect", "\\nonexistent"} & self.flags)


def _unquote(raw: bytes) -> str:
    text = raw.decode("utf-8", "surrogateescape")
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def parse_list_line(line: bytes) -> Folder | None:
    """One untagged LIST line (without ``* LIST``) -> a Folder, or None if it is not one."""
    match = _LIST_LINE.match(line)
    if match is None:
        return None
    flags = frozenset(f.lower() for f in match["flags"].decode().split())
    wire = _unquote(match["name"])
    name = mutf7.decode(wire)
    if name.upper() == "INBOX":
        role, name = FolderRole.INBOX, "INBOX"
    else:
        role = next((_ROLES[f] for f in flags if f in _ROLES), FolderRole.OTHER)
    return Folder(name=name, wire_name=wire, flags=flags, role=role)


def parse_list(lines: list[bytes]) -> list[Folder]:
    return [f for f in (parse_list_line(bytes(line)) for line in lines) if f is not None]


def quote(wire_name: str) -> str:
    """A folder name (or any ASCII text) as an IMAP quoted string (RFC 3501 section 4.3)."""
    return '"' + wire_name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def with_sent_folder(folders: list[Folder], sent_folder: str | None) -> list[Folder]:
    """The account's configured Sent folder has the Sent role, whatever the server flags:
    RFC 6154 special-use attributes are optional, and many servers send none."""
    if sent_folder is None:
        return folders
    return [
        replace(f, role=FolderRole.SENT) if f.name == sent_folder and f.name != "INBOX" else f
        for f in folders
    ]
