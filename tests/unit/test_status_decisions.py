"""The status page's pure decisions: each service's state from its consumer groups, the
dead-letter count, activities per minute, folder errors and since when they last."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from schemas.mailbox_state import AccountStatus, FolderProgress
from services.api.models import MailboxView, StateView
from services.api.pipeline_view import GroupView, group_state, records_on, service_state
from services.api.service_groups import service_groups
from services.api.settings import ApiSettings
from services.api.status import folder_errors
from services.api.throughput import per_minute
from services.cli import SERVICES
from services.common.process import Consumes
from services.fetcher.state import with_error_since

NOW = dt.datetime(2026, 6, 2, 10, 14, 30, tzinfo=dt.UTC)


def group(name: str, state: Any, members: int | None = 1) -> GroupView:
    return GroupView(
        group=name, state=state, kafka_state=None, members=members, commits=True, lag=()
    )


@pytest.mark.parametrize(
    ("kafka_state", "members", "shown"),
    [
        ("Stable", 2, "consuming"),
        ("Stable", 0, "no consumer"),
        ("Empty", 0, "no consumer"),
        ("Dead", 0, "no group"),
        ("PreparingRebalance", 1, "rebalancing"),
        ("CompletingRebalance", 1, "rebalancing"),
        ("Reconciling", 1, "rebalancing"),
        ("SomethingNew", 1, "unknown"),
    ],
)
def test_group_state_from_describe_groups(kafka_state: str, members: int, shown: str) -> None:
    assert group_state(kafka_state, members) == shown


def test_service_state_is_consuming_only_when_every_group_has_consumers() -> None:
    both = [group("f", "consuming", 2), group("f-confirmations", "consuming", 2)]
    assert service_state(both) == ("consuming", "consumers: 2 in f, 2 in f-confirmations")
    half = [group("f", "consuming"), group("f-confirmations", "no consumer", 0)]
    assert service_state(half) == ("partly consuming", "no consumer in f-confirmations")
    moving = [group("f", "rebalancing"), group("f-confirmations", "consuming")]
    assert service_state(moving)[0] == "rebalancing"
    stopped = [group("f", "no consumer", 0), group("f-confirmations", "no group", 0)]
    assert service_state(stopped) == (
        "no consumer",
        "no consumer in f, f-confirmations: it is not running",
    )
    never = [group("s", "no group", 0)]
    assert service_state(never)[0] == "no group"
    # Anything Kafka did not say makes the whole service unknown, not a guess.
    unsure = [group("f", "consuming"), group("f-confirmations", "unknown", None)]
    assert service_state(unsure)[0] == "unknown"
    refused = group("f", "unknown", None).model_copy(
        update={"error": "GroupAuthorizationFailedError"}
    )
    assert service_state([refused]) == (
        "unknown",
        "Kafka did not describe its consumer groups (f: GroupAuthorizationFailedError)",
    )


def test_dead_letters_are_end_minus_start_offsets_of_every_partition() -> None:
    assert records_on({0: 0}, {0: 1}) == 1
    # Retention deleted the first 5 of partition 1; partition 2 was never written.
    assert records_on({0: 0, 1: 5, 2: 0}, {0: 3, 1: 9, 2: 0}) == 7
    assert records_on({}, {}) == 0


def test_activities_per_minute_over_the_last_15_whole_minutes() -> None:
    created = [
        NOW - dt.timedelta(seconds=10),  # this minute (10:14)
        NOW - dt.timedelta(seconds=20),
        dt.datetime(2026, 6, 2, 10, 0, 0, tzinfo=dt.UTC),  # the first minute counted
        dt.datetime(2026, 6, 2, 9, 59, 59, tzinfo=dt.UTC),  # before it
        NOW + dt.timedelta(minutes=2),  # a clock ahead: not in the window
    ]
    t = per_minute(created, NOW)
    assert t.since == dt.datetime(2026, 6, 2, 10, 0, tzinfo=dt.UTC)
    assert t.until == NOW and t.activities == 3
    assert len(t.per_minute) == 15
    assert (t.per_minute[0].minute, t.per_minute[0].activities) == (t.since, 1)
    assert (t.per_minute[-1].minute.minute, t.per_minute[-1].activities) == (14, 2)
    assert sum(m.activities for m in t.per_minute[1:-1]) == 0


def test_a_repeated_folder_error_keeps_when_it_began() -> None:
    first = with_error_since(None, FolderProgress(folder="X", done=0, total=0, error="gone"), NOW)
    assert first.error_since == NOW
    later = NOW + dt.timedelta(minutes=5)
    again = FolderProgress(folder="X", done=0, total=0, error="gone")
    assert with_error_since(first, again, later).error_since == NOW
    other = FolderProgress(folder="X", done=0, total=0, error="refused")
    assert with_error_since(first, other, later).error_since == later
    fixed = FolderProgress(folder="X", done=3, total=3)
    assert with_error_since(first, fixed, later).error_since is None


def test_folder_errors_name_the_mailbox_folder_error_and_since() -> None:
    state = StateView(
        status=AccountStatus.IDLE,
        since=NOW,
        folders=(
            FolderProgress(folder="INBOX", done=2, total=2),
            FolderProgress(folder="Archiv", done=0, total=0, error="\\Noselect", error_since=NOW),
        ),
        done=2,
        total=2,
    )
    box = MailboxView(
        account_id="a1",
        address="jana@example.com",
        aliases=(),
        display_name="",
        kind="personal",
        group=None,
        can_send=False,
        paused=False,
        state=state,
    )
    (line,) = folder_errors([box, box.model_copy(update={"state": None})])
    assert (line.address, line.folder, line.error, line.since) == (
        "jana@example.com",
        "Archiv",
        "\\Noselect",
        NOW,
    )


def test_the_api_names_the_consumer_groups_each_service_declares() -> None:
    values: dict[str, Any] = {
        "topic_prefix": "t1.",
        "fetcher_group": "f-g",
        "dedup_app_id": "d-app",
        "writer_group": "w-g",
        "sender_group": "s-g",
    }
    # And by default too: the same variables, the same defaults.
    for given in (values, {}):
        named = service_groups(ApiSettings(**given))
        for name, make in SERVICES.items():
            service = make(given)
            declared = service.consumer_groups() if isinstance(service, Consumes) else []
            assert [(g.group, g.topics) for g in named.get(name, ())] == declared, name
