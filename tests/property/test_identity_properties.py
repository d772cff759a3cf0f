"""Identity and the writer's merge, for any arrival order (issue 15).

Messages are drawn from a few Message-IDs, senders, dates, subjects (with list tags and
reply prefixes) and bodies, so ids collide, list copies and conflicting copies occur;
each arrives at a few IMAP places. The documents come from the production rules:
:func:`identify`, the writer's :func:`fold` and :func:`conflict_links`.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from schemas.activity import SightingDoc
from schemas.common import FolderRole
from services.activity_writer.merge import Place, conflict_links, fold
from services.mail.headers import parse_headers
from services.mail.identity import identify
from tests.property.strategies import FAST


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    mid = draw(st.sampled_from(["<a@x.cz>", "< a@X.CZ >", "<b@x.cz>", None]))
    sender = draw(st.sampled_from(["anna@x.cz", "Anna <Anna@x.cz>", "eva@x.cz"]))
    date = draw(st.sampled_from(["Mon, 23 Nov 2026 16:15:18 +0000", "23 Nov 2026 17:15:18 +0100"]))
    subject = draw(st.sampled_from(["Offer", "[list] Offer", "Re: offer", "Invoice"]))
    body = draw(st.sampled_from(["Hi\r\n", "Hi\r\n--\r\nlist footer\r\n", ""]))
    head = f"From: {sender}\r\nDate: {date}\r\nSubject: {subject}\r\n"
    if mid is not None:
        head = f"Message-ID: {mid}\r\n{head}"
    return f"{head}\r\n{body}".encode()


places = st.tuples(
    st.sampled_from(["jan", "info"]),
    st.sampled_from(["INBOX", "Sent"]),
    st.just(1),
    st.integers(min_value=1, max_value=6),
)
# Each IMAP place holds one message: a dict from place to message.
mailboxes = st.dictionaries(places, messages(), min_size=1, max_size=8)


def sighting(p: Place) -> SightingDoc:
    account, folder, uidvalidity, uid = p
    return SightingDoc(
        account_id=account,
        folder=folder,
        uidvalidity=uidvalidity,
        uid=uid,
        folder_role=FolderRole.INBOX,
        duplicate=False,
    )


Documents = tuple[dict[str, tuple[Place, ...]], dict[str, tuple[str, ...]]]


def store(arrivals: Sequence[tuple[Place, bytes]]) -> Documents:
    """Activity id -> sightings in stored order; and the Message-ID conflict links."""
    docs: dict[str, tuple[Place, ...]] = {}
    by_mid: dict[str, list[str]] = {}
    for p, raw in arrivals:
        ident = identify(parse_headers(raw), raw)
        docs[ident.activity_id] = fold(docs.get(ident.activity_id, ()), sighting(p)).sightings
        if ident.fingerprint.startswith("mid:"):
            by_mid.setdefault(ident.fingerprint, []).append(ident.activity_id)
    return docs, conflict_links(by_mid)


@FAST
@given(st.data())
def test_any_order_of_arrival_gives_the_same_documents(data: st.DataObject) -> None:
    arrivals = list(data.draw(mailboxes).items())
    shuffled = data.draw(st.permutations(arrivals))
    # Replays: the same record again, anywhere later.
    replayed = [*shuffled, *data.draw(st.lists(st.sampled_from(arrivals), max_size=3))]
    (docs, links), (again, links_again) = store(arrivals), store(replayed)
    assert {k: set(v) for k, v in docs.items()} == {k: set(v) for k, v in again.items()}
    assert links == links_again
    for activity, sightings in again.items():
        # Every IMAP message is one sighting of one activity; one is canonical: the first.
        assert len(set(sightings)) == len(sightings)
        first = next(
            p for p, raw in replayed if identify(parse_headers(raw), raw).activity_id == activity
        )
        assert sightings[0] == first
    held = [p for sightings in again.values() for p in sightings]
    assert sorted(held) == sorted(p for p, _ in arrivals)


@FAST
@given(messages(), st.lists(places, min_size=2, max_size=4, unique=True))
def test_one_message_in_several_places_is_one_activity(raw: bytes, where: list[Place]) -> None:
    docs, links = store([(p, raw) for p in where])
    assert len(docs) == 1 and not links
    (sightings,) = docs.values()
    assert set(sightings) == set(where)


@FAST
@given(st.sampled_from(["eva@x.cz", "Mon, 30 Nov 2026 09:00:00 +0000", "Invoice"]))
def test_conflicting_copies_are_distinct_linked_activities(change: str) -> None:
    one = (
        b"Message-ID: <a@x.cz>\r\nFrom: anna@x.cz\r\n"
        b"Date: Mon, 23 Nov 2026 16:15:18 +0000\r\nSubject: Offer\r\n\r\nHi\r\n"
    )
    field = "From" if "@" in change else "Date" if "2026" in change else "Subject"
    other = b"\r\n".join(
        f"{field}: {change}".encode() if line.startswith(field.encode() + b":") else line
        for line in one.split(b"\r\n")
    )
    docs, links = store([(("jan", "INBOX", 1, 1), one), (("jan", "INBOX", 1, 2), other)])
    assert len(docs) == 2
    a, b = sorted(docs)
    assert links == {a: (b,), b: (a,)}
