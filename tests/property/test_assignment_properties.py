"""The fetchers' sticky assignment, for any group: members joining, leaving, dying."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.fetcher.assignment import (
    Member,
    Partition,
    Plan,
    assign,
    decode_held_back,
    decode_owned,
    encode_held_back,
    encode_owned,
)
from tests.property.strategies import FAST

TOPIC = "mailsync.accounts"


@st.composite
def groups(draw: st.DrawFn, *, overlapping: bool = False) -> tuple[int, dict[str, Member]]:
    """A partition count and the members of a new generation. Each partition was owned
    by one member (it stays, or joined with others), by a member gone from the group
    (it died), or by nobody; ``overlapping``: members may also claim the same one."""
    count = draw(st.integers(min_value=1, max_value=16))
    ids = draw(st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=6, unique=True))
    owner = draw(st.lists(st.sampled_from([*ids, None, "gone"]), min_size=count, max_size=count))
    owned: dict[str, set[Partition]] = {m: set() for m in ids}
    for p, m in enumerate(owner):
        if m in owned:
            owned[m].add((TOPIC, p))
    if overlapping:
        for m in ids:
            owned[m] |= {(TOPIC, p) for p in draw(st.sets(st.integers(0, count - 1)))}
    return count, {m: Member(frozenset({TOPIC}), frozenset(owned[m])) for m in ids}


def _spread(assigned: dict[str, frozenset[Partition]]) -> int:
    sizes = [len(ps) for ps in assigned.values()]
    return max(sizes) - min(sizes)


def _next_generation(members: dict[str, Member], plan: Plan) -> dict[str, Member]:
    """Every member stopped what it was not assigned, and reports what it runs."""
    return {m: Member(members[m].topics, plan.assigned[m]) for m in members}


@given(groups(overlapping=True))
@FAST
def test_a_partition_goes_only_to_a_member_no_other_member_owns(
    group: tuple[int, dict[str, Member]],
) -> None:
    count, members = group
    plan = assign({TOPIC: count}, members)
    given_out = [p for ps in plan.assigned.values() for p in ps]
    assert len(given_out) == len(set(given_out)), "a partition given to two members"
    for m, ps in plan.assigned.items():
        for other, member in members.items():
            assert other == m or not (ps & member.owned), f"{other} still runs what {m} got"
    assert plan.held_back.isdisjoint(given_out)


@given(groups(overlapping=True))
@FAST
def test_every_partition_has_one_target_owner_spread_within_one(
    group: tuple[int, dict[str, Member]],
) -> None:
    count, members = group
    plan = assign({TOPIC: count}, members)
    targets = [p for ps in plan.target.values() for p in ps]
    assert sorted(targets) == [(TOPIC, p) for p in range(count)]
    assert _spread(plan.target) <= 1
    assert set(given for ps in plan.assigned.values() for given in ps) | plan.held_back == set(
        targets
    )


@given(groups())
@FAST
def test_members_keep_what_they_own_up_to_their_share(
    group: tuple[int, dict[str, Member]],
) -> None:
    count, members = group
    plan = assign({TOPIC: count}, members)
    for m, member in members.items():
        kept = plan.assigned[m] & member.owned
        # Either it keeps all it had, or its whole share is what it had.
        assert kept == member.owned or kept == plan.target[m], m
    # The larger shares go to the members that own most: the fewest partitions move.
    for m in members:
        for other in members:
            if len(members[m].owned) > len(members[other].owned):
                assert len(plan.target[m]) >= len(plan.target[other])


@given(groups())
@FAST
def test_a_moved_partition_is_held_back_exactly_one_generation(
    group: tuple[int, dict[str, Member]],
) -> None:
    count, members = group
    first = assign({TOPIC: count}, members)
    second = assign({TOPIC: count}, _next_generation(members, first))
    assert second.held_back == frozenset()
    # Nobody stops anything in the follow-up: it only hands out what was held back.
    assert all(first.assigned[m] <= second.assigned[m] for m in members)
    assert _spread(second.assigned) <= 1
    third = assign({TOPIC: count}, _next_generation(members, second))
    assert third.assigned == second.assigned and not third.held_back  # stable


@given(groups())
@FAST
def test_what_nobody_owns_is_handed_out_at_once(group: tuple[int, dict[str, Member]]) -> None:
    """A first start, or the partitions of a member that died: no second round."""
    count, members = group
    plan = assign({TOPIC: count}, members)
    owned = {p for member in members.values() for p in member.owned}
    assert all(p in owned for p in plan.held_back)


@given(st.sets(st.tuples(st.just(TOPIC), st.integers(0, 63))))
@FAST
def test_user_data_round_trips(partitions: set[Partition]) -> None:
    every = frozenset({(TOPIC, 0)})
    assert decode_owned(encode_owned(frozenset(partitions)), every) == partitions
    assert decode_held_back(encode_held_back(frozenset(partitions))) == partitions


def test_user_data_not_understood_means_it_may_run_anything() -> None:
    every = frozenset({(TOPIC, 0), (TOPIC, 1)})
    for data in (b"", b"\x00garbage", b'{"v": 2, "owned": []}', b"[]", b'{"v": 1}'):
        assert decode_owned(data, every) == every


def test_a_claim_on_a_topic_the_member_does_not_subscribe_to_holds_nothing_back() -> None:
    # A member of another installation in the same group (or one whose user data could
    # not be read) claims partitions of a topic it does not read: they are still given out.
    members = {
        "a": Member(frozenset({"t1"}), frozenset()),
        "b": Member(frozenset({"t2"}), frozenset({("t1", 0), ("t1", 1)})),
    }
    plan = assign({"t1": 4, "t2": 4}, members)
    assert plan.assigned["a"] == frozenset(("t1", p) for p in range(4))
    assert plan.held_back == frozenset()
