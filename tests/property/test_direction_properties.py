"""Direction does not depend on the order accounts and messages arrive (issue 15)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from schemas.common import Direction
from services.activity_writer.direction import activity_direction, changed_addresses, involves
from tests.property.strategies import FAST

PEOPLE = ["jana@firma.cz", "info@firma.cz", "eva@firma.cz", "petr@zakaznik.cz"]
# A message: sender, recipients, filed in a Sent folder?
messages = st.tuples(
    st.sampled_from(PEOPLE),
    st.lists(st.sampled_from(PEOPLE), min_size=1, max_size=3, unique=True),
    st.booleans(),
)
events = st.lists(
    st.one_of(
        st.tuples(st.just("account"), st.sampled_from(PEOPLE[:3])),
        st.tuples(st.just("message"), messages),
    ),
    max_size=12,
)


# A message as drawn: (sender, recipients, filed in Sent).
Message = tuple[str, list[str], bool]


def replay(seq: list[tuple[str, Any]]) -> list[tuple[Message, Direction]]:
    """The writer's rules: a message is written with the accounts known then; an
    account added recomputes the stored activities it involves."""
    synced: frozenset[str] = frozenset()
    stored: list[tuple[Message, Direction]] = []
    for kind, item in seq:
        if kind == "account":
            before, synced = synced, synced | {item}
            changed = changed_addresses(before, synced)
            stored = [
                (m, activity_direction([m[0]], m[1], m[2], synced))
                if involves([m[0], *m[1]], changed)
                else (m, d)
                for m, d in stored
            ]
        else:
            sender, rcpts, sent = item
            stored.append((item, activity_direction([sender], rcpts, sent, synced)))
    return sorted(stored, key=repr)


@FAST
@given(st.data())
def test_any_order_of_accounts_and_messages_gives_the_same_directions(
    data: st.DataObject,
) -> None:
    seq = data.draw(events)
    shuffled = data.draw(st.permutations(seq))
    assert replay(seq) == replay(shuffled)


def test_mail_between_two_synced_accounts_is_internal_either_way() -> None:
    both = frozenset({"jana@firma.cz", "info@firma.cz"})
    mail = (["jana@firma.cz"], ["info@firma.cz"])
    assert activity_direction(*mail, False, both) is Direction.INTERNAL
    assert activity_direction(*mail, True, frozenset({"jana@firma.cz"})) is Direction.OUTBOUND
    assert activity_direction(*mail, False, frozenset({"info@firma.cz"})) is Direction.INBOUND
