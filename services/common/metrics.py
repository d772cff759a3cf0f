"""Every Prometheus metric of mailsync, defined once, with stable names and labels.

The README's "Metrics" table documents each of them; the Grafana dashboard and the
alert rules in ``deploy/`` may use only the names defined here (a test checks it).
Services call the small helpers below at their thin I/O points, never the metric
objects' internals, so label sets stay the same everywhere.

Per-account series are off by default (``MAILSYNC_METRICS_PER_ACCOUNT``, applied by
:func:`configure` when a process starts): at 10,000 accounts a series per account and
folder and metric is more than a Prometheus should hold for one service, so the counters
are summed over accounts and only ``mailsync_accounts{state}`` says how many are in
which state (which ones: the ``account_states`` collection, ``mailsync accounts list``).
A small installation turns them on; then ``account`` and ``folder`` label values are
bounded (:mod:`.labels`). Histograms never carry an account label (a series per bucket
per account would be too many).

Conventions that keep queries and alerts right:

- no ``_created`` series (:func:`disable_created_metrics`): they double the series
  and no query here uses them;
- no label called ``service``: the Prometheus Operator puts its own ``service`` target
  label on every series and would rename ours to ``exported_service``; the process's
  part is the ``component`` label;
- the counters alerts use exist at 0 from the start (:func:`initialise`, and each
  account's send outcomes from its first request): ``increase()`` and ``rate()`` see
  nothing of the increment that creates a series, so the first dead letter would
  otherwise never alert.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import TypeVar

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.metrics import MetricWrapperBase

from schemas.mailbox_state import AccountStatus
from services.common.labels import OTHER, LabelBudget

disable_created_metrics()  # type: ignore[no-untyped-call]

# Series budgets: beyond these, values are counted under "_other".
MAX_ACCOUNTS = 5000
MAX_FOLDERS = 200

account_label = LabelBudget(MAX_ACCOUNTS)
folder_label = LabelBudget(MAX_FOLDERS)

# Latency buckets from a second to a day: mail is expected within a minute or two.
LATENCY_BUCKETS = (1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600)
SEND_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

# Whether the families below name the account (MAILSYNC_METRICS_PER_ACCOUNT): set by
# configure() when the process starts, before any service counts anything.
_per_account = False


def _by_account(*labels: str) -> list[str]:
    """``labels``, with ``account`` first when per-account series are on."""
    return ["account", *labels] if _per_account else list(labels)


def _account_families() -> tuple[Counter, Counter, Counter, Counter, Counter, Counter, Counter]:
    """The counters that have an ``account`` label when per-account series are on."""
    return (
        Counter(
            "mailsync_messages_fetched",
            "Messages fetched from IMAP (BODY.PEEK[]) by the fetcher.",
            _by_account("folder"),
        ),
        Counter(
            "mailsync_messages_published",
            "Fetched messages acknowledged by Kafka (acks=all) on the raw-messages topic.",
            _by_account("folder"),
        ),
        Counter(
            "mailsync_sightings_written",
            "Sightings (IMAP messages) newly stored in the activities collection by the "
            "writer; a replay of a stored one is not counted.",
            _by_account("folder"),
        ),
        Counter(
            "mailsync_activities_created",
            "Activity documents created by the writer (per account: that of their first sighting).",
            _by_account(),
        ),
        Counter(
            "mailsync_duplicates_linked",
            "Sightings dedup found to be another sighting of a known message.",
            _by_account(),
        ),
        Counter(
            "mailsync_messages_sent",
            "Send requests handled by the sender, by outcome (sent, failed, rejected...).",
            _by_account("outcome"),
        ),
        Counter(
            "mailsync_sent_filed",
            "Sent messages filed (IMAP APPEND) in the account's Sent folder.",
            _by_account(),
        ),
    )


(
    MESSAGES_FETCHED,
    MESSAGES_PUBLISHED,
    SIGHTINGS_WRITTEN,
    ACTIVITIES_CREATED,
    DUPLICATES_LINKED,
    MESSAGES_SENT,
    SENT_FILED,
) = _account_families()
# The families whose label names depend on the setting, by name (bench/tests read it).
PER_ACCOUNT = frozenset(
    f._name
    for f in (
        MESSAGES_FETCHED,
        MESSAGES_PUBLISHED,
        SIGHTINGS_WRITTEN,
        ACTIVITIES_CREATED,
        DUPLICATES_LINKED,
        MESSAGES_SENT,
        SENT_FILED,
    )
)
DEAD_LETTERS = Counter(
    "mailsync_dead_letters",
    "Records published to the dead-letter topic, by the stage that gave up on them.",
    ["stage"],
)
ERRORS = Counter(
    "mailsync_errors",
    "Failures handled by a component (retried, isolated or dead-lettered), by exception class.",
    ["component", "error"],
)
SEND_LATENCY = Histogram(
    "mailsync_send_latency_seconds",
    "From the send request's creation to the SMTP server's acceptance.",
    buckets=SEND_BUCKETS,
)
INGEST_LATENCY = Histogram(
    "mailsync_ingest_latency_seconds",
    "From delivery (IMAP INTERNALDATE) to the activity written; backfilled mail excluded.",
    buckets=LATENCY_BUCKETS,
)
PIPELINE_LATENCY = Histogram(
    "mailsync_pipeline_latency_seconds",
    "From the fetcher's fetch to the activity written (Kafka, dedup and the writer).",
    buckets=LATENCY_BUCKETS,
)
CONSUMER_LAG = Gauge(
    "mailsync_consumer_lag",
    "Records not yet committed by a consumer group, summed over a topic's partitions.",
    ["topic", "group"],
)
ACCOUNTS = Gauge(
    "mailsync_accounts",
    "Accounts run by this fetcher, by state (connecting, syncing, idle, auth_failed...).",
    ["state"],
)
IMAP_CONNECTIONS = Gauge(
    "mailsync_imap_connections",
    "Logged-in IMAP connections open in this process (fetcher sessions, the sender's "
    "filing, the API's credential checks).",
)
ACCOUNT_STATUS = Gauge(
    "mailsync_account_status",
    "1 for the account's current status in this fetcher (auth_failed, idle, ...); only "
    "with per-account series on.",
    ["account", "status"],
)
FETCHED_BYTES_HELD = Gauge(
    "mailsync_fetcher_held_bytes",
    "Bytes of fetched mail this fetcher holds: read from IMAP and not yet acknowledged "
    "by Kafka, over all its imports; its connections wait while it is over "
    "MAILSYNC_FETCHER_HELD_MIB.",
)
EVENT_LOOP_LAG = Gauge(
    "mailsync_event_loop_lag_seconds",
    "How late the event loop woke a periodic timer, last time: a busy or blocked loop.",
)
GC_PAUSES = Histogram(
    "mailsync_gc_pause_seconds",
    "Time the cyclic garbage collector held the process, by generation collected.",
    ["generation"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
READY = Gauge(
    "mailsync_ready",
    "1 when every service of the process has started and its dependencies answer.",
)

_status: dict[str, str] = {}  # every account's status, per-account series or not

# What each component can report, so its series exist (at 0) from the start.
DEAD_LETTER_STAGES = {
    "dedup": ["dedup.tag"],
    "activity-writer": ["activity_writer"],
    "sender": ["sender"],
}
SEND_OUTCOMES = ["sent", "failed", "deferred", "refused", "unknown"]
_RUN_STATES = [s.value for s in AccountStatus if s is not AccountStatus.NOT_RUNNING]
_send_accounts: set[tuple[str, ...]] = set()  # label values whose outcomes exist

_M = TypeVar("_M", bound=MetricWrapperBase)


def configure(*, per_account: bool) -> None:
    """Per-account series on or off (``MAILSYNC_METRICS_PER_ACCOUNT``), once, before the
    process's services start: the families that may name the account are defined again
    with or without the label (a family's label names are fixed when it is made)."""
    global _per_account, MESSAGES_FETCHED, MESSAGES_PUBLISHED, SIGHTINGS_WRITTEN
    global ACTIVITIES_CREATED, DUPLICATES_LINKED, MESSAGES_SENT, SENT_FILED
    if per_account == _per_account:
        return
    for family in (
        MESSAGES_FETCHED,
        MESSAGES_PUBLISHED,
        SIGHTINGS_WRITTEN,
        ACTIVITIES_CREATED,
        DUPLICATES_LINKED,
        MESSAGES_SENT,
        SENT_FILED,
    ):
        REGISTRY.unregister(family)
    _per_account = per_account
    (
        MESSAGES_FETCHED,
        MESSAGES_PUBLISHED,
        SIGHTINGS_WRITTEN,
        ACTIVITIES_CREATED,
        DUPLICATES_LINKED,
        MESSAGES_SENT,
        SENT_FILED,
    ) = _account_families()
    _send_accounts.clear()
    ACCOUNT_STATUS.clear()
    if per_account:  # accounts already running (none when called at start) keep theirs
        for account_id, status in _status.items():
            ACCOUNT_STATUS.labels(account_label(account_id), status).set(1)


def per_account() -> bool:
    """Whether the account-naming families carry the ``account`` label now."""
    return _per_account


def _account(account_id: str) -> tuple[str, ...]:
    """The account's label value, or none when per-account series are off."""
    return (account_label(account_id),) if _per_account else ()


def _child(family: _M, *labels: str) -> _M:
    """The family's series of ``labels``; the family itself when it has no labels."""
    return family.labels(*labels) if labels else family


def initialise(components: Iterable[str]) -> None:
    """Create the series of ``components`` (service names) that alerts read, at 0."""
    for component in components:
        for stage in DEAD_LETTER_STAGES.get(component, []):
            DEAD_LETTERS.labels(stage)
        if component == "fetcher":
            for state in _RUN_STATES:
                ACCOUNTS.labels(state)
        if component == "sender" and not _per_account:
            _send_outcomes(())


def fetched(account_id: str, folder: str, n: int) -> None:
    MESSAGES_FETCHED.labels(*_account(account_id), folder_label(folder)).inc(n)


def published(account_id: str, folder: str, n: int) -> None:
    MESSAGES_PUBLISHED.labels(*_account(account_id), folder_label(folder)).inc(n)


def sighting_written(account_id: str, folder: str) -> None:
    SIGHTINGS_WRITTEN.labels(*_account(account_id), folder_label(folder)).inc()


def activity_created(account_id: str) -> None:
    _child(ACTIVITIES_CREATED, *_account(account_id)).inc()


def duplicate_linked(account_id: str) -> None:
    _child(DUPLICATES_LINKED, *_account(account_id)).inc()


def dead_lettered(stage: str) -> None:
    DEAD_LETTERS.labels(stage).inc()


def error(component: str, exc: BaseException) -> None:
    ERRORS.labels(component, type(exc).__name__).inc()


def sent(account_id: str, outcome: str, latency_s: float | None = None) -> None:
    """A send request's outcome; ``latency_s`` when the SMTP server accepted it."""
    label = _account(account_id)
    _send_outcomes(label)
    MESSAGES_SENT.labels(*label, outcome).inc()
    if latency_s is not None:
        SEND_LATENCY.observe(max(latency_s, 0.0))


def _send_outcomes(label: tuple[str, ...]) -> None:
    """Every outcome's series (of the account, with per-account series) at 0 from the
    first request on (from the start without them): a failure after it increments a
    series that already exists."""
    if label not in _send_accounts:
        _send_accounts.add(label)
        for outcome in SEND_OUTCOMES:
            MESSAGES_SENT.labels(*label, outcome)


def filed(account_id: str) -> None:
    _child(SENT_FILED, *_account(account_id)).inc()


def latencies(ingest_s: float | None, pipeline_s: float | None) -> None:
    if ingest_s is not None:
        INGEST_LATENCY.observe(ingest_s)
    if pipeline_s is not None:
        PIPELINE_LATENCY.observe(pipeline_s)


def account_status(account_id: str, status: str) -> None:
    """The account's status changed: the state counts, and with per-account series one
    ``1`` series per account."""
    previous = _status.get(account_id)
    if previous == status:
        return
    _status[account_id] = status
    if previous is not None:
        _drop_status(account_id, previous)
    if _per_account:
        ACCOUNT_STATUS.labels(account_label(account_id), status).set(1)
    ACCOUNTS.labels(status).inc()


def forget_account(account_id: str) -> None:
    """The account left this fetcher (deleted, or moved to another replica)."""
    previous = _status.pop(account_id, None)
    if previous is not None:
        _drop_status(account_id, previous)


def report_fetched_bytes_held(read: Callable[[], int]) -> None:
    """The gauge is ``read()`` when scraped: the count changes twice a fetched message,
    and setting the gauge each time was a lock and a call of its own."""
    FETCHED_BYTES_HELD.set_function(read)


def imap_connected() -> None:
    IMAP_CONNECTIONS.inc()


def imap_disconnected() -> None:
    IMAP_CONNECTIONS.dec()


def _drop_status(account_id: str, status: str) -> None:
    ACCOUNTS.labels(status).dec()
    if not _per_account:
        return
    label = account_label(account_id)
    # Accounts beyond the budget share "_other": keep its series while one is left there.
    if label == OTHER and any(
        account_label(a) == OTHER and s == status for a, s in _status.items()
    ):
        return
    with contextlib.suppress(KeyError):
        ACCOUNT_STATUS.remove(label, status)
