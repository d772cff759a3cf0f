"""What to fetch: UID sets, batches, the import window and backoff, for any input."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from schemas.account import ImportAll, ImportLastN
from services.common.retry import backoff_delay
from services.fetcher.sync import batches, select_uids
from services.imap.sequence_set import uid_set
from tests.property.strategies import FAST

uid_lists = st.lists(st.integers(min_value=1, max_value=2**32 - 1), max_size=60)
dense_uid_lists = st.lists(st.integers(min_value=1, max_value=80), max_size=60)


def expand(sequence_set: str) -> list[int]:
    """The UIDs an RFC 3501 sequence-set without ``*`` names."""
    out: list[int] = []
    for part in filter(None, sequence_set.split(",")):
        low, _, high = part.partition(":")
        out.extend(range(int(low), int(high or low) + 1))
    return out


@FAST
@given(st.one_of(uid_lists, dense_uid_lists))
def test_uid_set_expands_to_its_input(uids: list[int]) -> None:
    ordered = sorted(set(uids))
    assert expand(uid_set(ordered)) == ordered


@FAST
@given(dense_uid_lists)
def test_uid_set_uses_one_range_per_run(uids: list[int]) -> None:
    """Maximal compression: no ``5:5`` ranges, and no two parts that could be merged."""
    bounds = []
    for part in filter(None, uid_set(sorted(set(uids))).split(",")):
        low, colon, high = part.partition(":")
        if colon:
            assert int(low) < int(high)
        bounds.append((int(low), int(high or low)))
    for (_, end), (start, _) in itertools.pairwise(bounds):
        assert end + 1 < start


@FAST
@given(uid_lists, st.integers(min_value=1, max_value=25))
def test_batches_partition_the_input(uids: list[int], size: int) -> None:
    parts = batches(uids, size)
    assert [u for part in parts for u in part] == uids
    assert all(1 <= len(part) <= size for part in parts)
    assert all(len(part) == size for part in parts[:-1])


@FAST
@given(uid_lists, st.integers(min_value=0, max_value=2**32 - 1))
def test_select_uids_are_sorted_unique_and_above_the_cursor(uids: list[int], last: int) -> None:
    chosen = select_uids(uids, last, ImportAll())
    assert chosen == sorted(set(chosen))
    assert set(chosen) == {u for u in uids if u > last}


@FAST
@given(st.data())
def test_select_uids_last_n_keeps_the_newest_n(data: st.DataObject) -> None:
    uids = data.draw(dense_uid_lists)
    distinct = set(uids)
    # Windows larger than the folder included: then everything is taken.
    count = data.draw(st.integers(min_value=0, max_value=len(distinct) + 5))
    chosen = select_uids(uids, 0, ImportLastN(count=count))
    assert len(chosen) == min(count, len(distinct))
    assert all(u > v for u in chosen for v in distinct - set(chosen))


@FAST
@given(
    st.integers(min_value=0, max_value=1000),
    st.floats(min_value=0.01, max_value=60),
    st.floats(min_value=0.01, max_value=3600),
    st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_backoff_is_positive_capped_and_never_shrinks(
    attempt: int, base: float, cap: float, jitter: float
) -> None:
    delay = backoff_delay(attempt, base=base, cap=cap, jitter=jitter)
    following = backoff_delay(attempt + 1, base=base, cap=cap, jitter=jitter)
    assert 0 < delay <= cap
    assert delay >= min(base, cap) * 0.5
    assert following >= delay
