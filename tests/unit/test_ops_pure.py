"""The pure parts of operations: label budgets, lag, readiness, latency, log lines."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from collections.abc import Iterator

import pytest
from aiokafka.errors import GroupCoordinatorNotAvailableError, InvalidGroupIdError
from prometheus_client import REGISTRY

from services.activity_writer.latency import ingest_latency, pipeline_latency
from services.common import metrics
from services.common.labels import OTHER, LabelBudget
from services.common.lag import lag_by_topic
from services.common.logs import (
    JsonFormatter,
    TextFormatter,
    forget_secrets,
    log_context,
    redact,
    register_secret,
    setup_logging,
)
from services.common.readiness import readiness
from services.common.settings import CommonSettings

T0 = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)


def test_label_budget_keeps_the_first_values_and_folds_the_rest() -> None:
    budget = LabelBudget(2)
    assert [budget(v) for v in ("a", "b", "c", "a", "d", "b")] == ["a", "b", OTHER, "a", OTHER, "b"]
    with pytest.raises(ValueError):
        LabelBudget(0)


def test_lag_sums_partitions_counts_uncommitted_whole_and_never_goes_negative() -> None:
    end = {("t", 0): 10, ("t", 1): 5, ("t", 2): 7, ("u", 0): 3}
    committed = {("t", 0): 4, ("t", 1): 9, ("u", 0): 3}  # t/1 ahead: committed after end was read
    assert lag_by_topic(committed, end) == {"t": 6 + 0 + 7, "u": 0}
    assert lag_by_topic({("t", 0): -1}, {("t", 0): 2}) == {"t": 2}  # -1: nothing committed


def test_ready_only_when_started_not_stopping_and_dependencies_answer() -> None:
    ok = {"kafka": None, "mongodb": None}
    assert readiness({"fetcher": True, "dedup": True}, False, ok).ready
    starting = readiness({"fetcher": True, "dedup": False}, False, ok)
    assert not starting.ready and starting.body["problems"] == ["dedup not started"]
    down = readiness(
        {"fetcher": True}, False, {"kafka": "unreachable (KafkaError)", "mongodb": None}
    )
    assert not down.ready
    assert down.body["dependencies"] == {"kafka": "unreachable (KafkaError)", "mongodb": "ok"}
    assert not readiness({"fetcher": True}, True, ok).ready


def test_ingest_latency_from_internaldate_and_backfill_left_out() -> None:
    written = T0 + dt.timedelta(seconds=42)
    assert ingest_latency(T0, T0 + dt.timedelta(seconds=5), written) == 42.0
    assert ingest_latency(None, T0, written) is None
    old = T0 - dt.timedelta(days=3)  # an initial import of old mail
    assert ingest_latency(old, T0, written) is None
    assert ingest_latency(T0 + dt.timedelta(minutes=1), T0, written) == 0.0  # clock skew
    assert pipeline_latency(T0, written) == 42.0


def _record(msg: str, *args: object, exc: bool = False) -> logging.LogRecord:
    info = None
    if exc:
        try:
            raise RuntimeError("boom with s3cr3t-pass")
        except RuntimeError:
            info = sys.exc_info()
    return logging.LogRecord("mailsync.test", logging.WARNING, __file__, 1, msg, args, info)


def test_json_log_line_carries_ids_and_masks_registered_secrets() -> None:
    register_secret("s3cr3t-pass")
    register_secret("abc")  # too short to mask safely: ignored
    with log_context(account_id="jana", request_id="req-1"):
        line = JsonFormatter().format(
            _record("login as %s with %s", "jana", "s3cr3t-pass", exc=True)
        )
    data = json.loads(line)
    assert "\n" not in line
    assert data["level"] == "WARNING" and data["logger"] == "mailsync.test"
    assert data["message"] == "login as jana with **********"
    assert (data["account_id"], data["request_id"]) == ("jana", "req-1")
    assert "RuntimeError: boom with **********" in data["exception"]
    assert "s3cr3t-pass" not in line
    assert dt.datetime.fromisoformat(data["time"]).tzinfo is not None
    outside = json.loads(JsonFormatter().format(_record("no context")))
    assert outside["account_id"] is None and outside["request_id"] is None
    assert "abc" in JsonFormatter().format(_record("abc stays"))


def test_every_secret_is_masked_whole_among_ten_thousand() -> None:
    """A fetcher registers every account's password: each still masked whole, where it
    starts a line, ends it, overlaps or contains another, or follows one directly."""
    passwords = [f"pw-{n:05d}-{n * 7919 % 100003:06d}" for n in range(10_000)]
    for password in passwords:
        register_secret(password)
    register_secret("overlap-start-")
    register_secret("start-and-end")
    register_secret("contains-inner-x")
    register_secret("inner-x")
    first, last = passwords[0], passwords[-1]
    assert redact(f"{first} logged in") == "********** logged in"
    assert redact(f"logged in as {last}") == "logged in as **********"
    assert redact(f"{first}{last}!") == "**********!"
    assert redact("a overlap-start-and-end b") == "a ********** b"
    assert redact("[contains-inner-x]") == "[**********]"
    assert redact("only inner-x here") == "only ********** here"
    assert redact(f"{first[:-1]} is not one") == f"{first[:-1]} is not one"
    assert redact("short") == "short"


def test_an_accounts_refreshed_tokens_are_masked_only_while_they_may_be_in_use() -> None:
    """A fetcher logs in with a fresh access token every hour for years: it masks each
    account's newest two (the one before may still be valid), not every token it used."""
    tokens = [f"at-rotating-{n:06d}" for n in range(1_000)]
    for token in tokens:
        register_secret(token, key="imap:rot")
        register_secret(token, key="imap:rot")  # every retry registers it again
    line = " ".join(tokens[-3:])
    assert redact(line) == f"{tokens[-3]} ********** **********"
    assert redact(tokens[0]) == tokens[0]
    forget_secrets("imap:rot")  # the account left this process
    assert redact(line) == line


def test_a_secret_still_held_elsewhere_stays_masked_when_one_holder_goes() -> None:
    """Two accounts with one password (or the database's, registered for ever): one
    account leaving, or changing it, unmasks nothing the other still uses."""
    register_secret("shared-Pa55word", key="imap:a")
    register_secret("shared-Pa55word", key="imap:b")
    register_secret("settings-Pa55word")
    register_secret("settings-Pa55word", key="imap:c")
    forget_secrets("imap:a")
    forget_secrets("imap:c")
    assert redact("shared-Pa55word settings-Pa55word") == "********** **********"
    register_secret("changed-1-Pa55word", key="imap:b")
    register_secret("changed-2-Pa55word", key="imap:b")  # the shared one is now third
    assert redact("shared-Pa55word") == "shared-Pa55word"
    assert redact("changed-1-Pa55word changed-2-Pa55word") == "********** **********"


def test_text_log_line_names_the_account() -> None:
    with log_context(account_id="info"):
        assert TextFormatter().format(_record("synced")).endswith("synced [account=info]")


def _sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


@pytest.fixture
def per_account() -> Iterator[None]:
    """MAILSYNC_METRICS_PER_ACCOUNT=true for one test; back to the default after it."""
    metrics.configure(per_account=True)
    try:
        yield
    finally:
        metrics.configure(per_account=False)


def _account_labelled() -> list[str]:
    return [
        f"{s.name}{s.labels}"
        for family in REGISTRY.collect()
        for s in family.samples
        if "account" in s.labels
    ]


def _count_one_of_each(account_id: str) -> None:
    """What every service reports of one account: a sync, a write, a send, a status."""
    metrics.fetched(account_id, "INBOX", 2)
    metrics.published(account_id, "INBOX", 2)
    metrics.sighting_written(account_id, "INBOX")
    metrics.activity_created(account_id)
    metrics.duplicate_linked(account_id)
    metrics.sent(account_id, "sent", 0.5)
    metrics.filed(account_id)
    metrics.account_status(account_id, "idle")


def test_no_account_label_by_default_and_the_counters_are_summed() -> None:
    assert CommonSettings.model_fields["metrics_per_account"].default is False
    metrics.configure(per_account=False)  # as run_process does with the default
    metrics.initialise(["fetcher", "sender"])
    before = _sample("mailsync_messages_fetched_total", folder="INBOX") or 0.0
    created = _sample("mailsync_activities_created_total") or 0.0
    # The sender's outcomes exist at 0 from the start, not from a first request.
    assert _sample("mailsync_messages_sent_total", outcome="failed") is not None
    for account_id in ("summed-a", "summed-b"):
        _count_one_of_each(account_id)
    assert _account_labelled() == []
    assert _sample("mailsync_messages_fetched_total", folder="INBOX") == before + 4
    assert _sample("mailsync_activities_created_total") == created + 2
    assert (_sample("mailsync_accounts", state="idle") or 0) >= 2
    for account_id in ("summed-a", "summed-b"):
        metrics.forget_account(account_id)


def test_per_account_series_when_turned_on(per_account: None) -> None:
    _count_one_of_each("labelled-a")
    labels = {"account": "labelled-a", "folder": "INBOX"}
    assert _sample("mailsync_messages_fetched_total", **labels) == 2
    assert _sample("mailsync_sightings_written_total", **labels) == 1
    assert _sample("mailsync_sent_filed_total", account="labelled-a") == 1
    assert _sample("mailsync_account_status", account="labelled-a", status="idle") == 1
    names = {n.split("{")[0] for n in _account_labelled()}
    assert names == {
        *(f"{name}_total" for name in metrics.PER_ACCOUNT),
        "mailsync_account_status",
    }
    # Turned off again (a test's end): the series go, the state counts stay.
    metrics.configure(per_account=False)
    assert _account_labelled() == []
    assert (_sample("mailsync_accounts", state="idle") or 0) >= 1
    metrics.forget_account("labelled-a")


def test_account_status_keeps_one_series_per_account_and_counts_states(
    per_account: None,
) -> None:
    acc = "status-test-account"
    idle_before = _sample("mailsync_accounts", state="idle") or 0.0
    metrics.account_status(acc, "connecting")
    metrics.account_status(acc, "idle")
    metrics.account_status(acc, "idle")
    assert _sample("mailsync_account_status", account=acc, status="idle") == 1.0
    assert _sample("mailsync_account_status", account=acc, status="connecting") is None
    assert _sample("mailsync_accounts", state="idle") == idle_before + 1
    metrics.forget_account(acc)
    assert _sample("mailsync_account_status", account=acc, status="idle") is None
    assert _sample("mailsync_accounts", state="idle") == idle_before


def test_alerted_counters_exist_at_zero_and_no_created_series(per_account: None) -> None:
    metrics.initialise(["dedup", "activity-writer", "sender", "fetcher"])
    for stage in ("dedup.tag", "activity_writer", "sender"):
        assert _sample("mailsync_dead_letters_total", stage=stage) is not None
    assert _sample("mailsync_accounts", state="auth_failed") is not None
    acc = "first-send-account"
    metrics.sent(acc, "sent", 1.0)
    assert _sample("mailsync_messages_sent_total", account=acc, outcome="sent") == 1
    assert _sample("mailsync_messages_sent_total", account=acc, outcome="failed") == 0
    names = {s.name for family in REGISTRY.collect() for s in family.samples}
    assert not {n for n in names if n.endswith("_created")}
    labels = {k for family in REGISTRY.collect() for s in family.samples for k in s.labels}
    # The Prometheus Operator's target label would rename ours to exported_service.
    assert "service" not in labels


def test_imap_connections_count_open_sessions() -> None:
    before = _sample("mailsync_imap_connections") or 0.0
    metrics.imap_connected()
    assert _sample("mailsync_imap_connections") == before + 1
    metrics.imap_disconnected()
    assert _sample("mailsync_imap_connections") == before


def test_a_retried_coordinator_lookup_is_a_warning_and_a_refusal_an_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """What a first ``make run`` printed: aiokafka's ERROR for a lookup it retries."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        setup_logging("INFO", "json")
        coordinator = logging.getLogger("aiokafka.consumer.group_coordinator")
        # The very call aiokafka makes (consumer/group_coordinator.py).
        coordinator.error(
            "Group Coordinator Request failed: %s", GroupCoordinatorNotAvailableError()
        )
        coordinator.error("Group Coordinator Request failed: %s", InvalidGroupIdError())
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(line["level"], line["message"].split(": ", 1)[1]) for line in lines] == [
        ("WARNING", "[Error 15] GroupCoordinatorNotAvailableError"),
        ("ERROR", "[Error 24] InvalidGroupIdError"),
    ]
