"""How a folder's cursor moves (pure): every write of it is one :func:`advance`.

The cursor is (account, folder, UIDVALIDITY, UID): a UID means something only with its
UIDVALIDITY (RFC 3501 2.3.1.1). Besides the last UID it keeps the UIDs published and
still in the folder (what expunges are found against), the UIDs the server listed but
did not return (retried every pass), and the flag state of the last completed pass
(HIGHESTMODSEQ, RFC 7162, and the message count) that the next pass compares with.

Four things move it, each a :data:`Change`:

- :class:`Published`  a batch of new mail that Kafka acknowledged (acks=all), mid-pass
- :class:`PassDone`   a folder pass ended: what it published, what left the folder
- :class:`Renumbered` the folder's UIDVALIDITY changed, the same messages renumbered
- :class:`MovedAway`  processed mail we moved out of the folder ourselves
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.mailbox_state import FolderCursor
from services.imap import FolderStatus, expand_uid_set


@dataclass(frozen=True)
class Position:
    """What a cursor write stores (the document's other fields name the folder)."""

    uidvalidity: int
    last_uid: int
    uids: frozenset[int]  # published and still in the folder
    missing: tuple[int, ...]  # listed by SEARCH, not returned by FETCH: retried
    highestmodseq: int | None
    exists: int


@dataclass(frozen=True)
class Published:
    """A batch acknowledged mid-pass: ``uids`` is every UID the pass published so far,
    ``missing`` every UID it found missing so far."""

    uids: frozenset[int]
    missing: tuple[int, ...]


@dataclass(frozen=True)
class PassDone:
    """The pass ended, every event of it acknowledged: ``fetched`` is what it published
    (and what it counted as seen without fetching: erased), ``gone`` what left the folder."""

    fetched: frozenset[int]
    gone: frozenset[int]
    missing: tuple[int, ...]


@dataclass(frozen=True)
class Renumbered:
    """A new UIDVALIDITY, the same messages (:mod:`.revalidate`): ``uids`` are their new
    UIDs, ``refetch`` the new UIDs to fetch again."""

    uids: frozenset[int]
    refetch: tuple[int, ...]


@dataclass(frozen=True)
class MovedAway:
    """We moved these UIDs out of the folder (the processed-mail action)."""

    uids: frozenset[int]


Change = Published | PassDone | Renumbered | MovedAway


def advance(prev: FolderCursor | None, status: FolderStatus, change: Change) -> Position | None:
    """The cursor after ``change``, from ``prev`` (the folder's cursor when the pass, or
    the move, began) and the folder's ``status``; None when there is nothing to write.

    ``last_uid`` never goes down within one UIDVALIDITY: UIDs only grow and are never
    reused (RFC 3501 2.3.1.1), so nothing new can lie below the highest UID ever held,
    whether that message is still there or not. (It used to be the highest UID still
    held: once the newest message left, by an expunge or the processed-mail move,
    ``UIDNEXT - 1 > last_uid`` held at every poll, and each poll ran a full pass; an
    emptied folder went back to 0, where the first-import window applies again.)
    """
    # A cursor of another UIDVALIDITY holds nothing of this numbering (RFC 3501 2.3.1.1).
    held = prev if prev is not None and prev.uidvalidity == status.uidvalidity else None
    known = expand_uid_set(held.uids) if held is not None else set()
    floor = held.last_uid if held is not None else 0
    match change:
        case Published(uids, missing):
            # The flag state stays where the last completed pass left it: only the end
            # of this pass may say its flag changes and expunges were published.
            if held is None:
                return _position(
                    status.uidvalidity, known | uids, missing, status.highestmodseq, 0, floor
                )
            return _position(
                status.uidvalidity, known | uids, missing, held.highestmodseq, held.exists, floor
            )
        case PassDone(fetched, gone, missing):
            kept = (known - gone) | fetched
            return _position(
                status.uidvalidity, kept, missing, status.highestmodseq, status.exists, floor
            )
        case Renumbered(uids, refetch):
            # Flags are compared afresh: the old MODSEQs belong to the old numbering.
            return _position(status.uidvalidity, uids, refetch, None, len(uids), 0)
        case MovedAway(moved):
            if held is None:
                return None  # not synced, or renumbered since: the next pass resyncs it
            return Position(
                uidvalidity=held.uidvalidity,
                last_uid=held.last_uid,
                uids=frozenset(known - moved),
                missing=held.missing_uids,
                highestmodseq=held.highestmodseq,
                exists=max(0, held.exists - len(moved)),
            )


def _position(
    uidvalidity: int,
    uids: set[int] | frozenset[int],
    missing: tuple[int, ...],
    highestmodseq: int | None,
    exists: int,
    floor: int,
) -> Position:
    return Position(
        uidvalidity=uidvalidity,
        last_uid=max(floor, max(uids, default=0)),
        uids=frozenset(uids),
        missing=missing,
        highestmodseq=highestmodseq,
        exists=exists,
    )
