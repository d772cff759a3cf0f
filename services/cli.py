"""The mailsync command: one subcommand per service, plus run for all of them.

mailsync fetcher | dedup | activity-writer | sender
                                             one service, as a Kubernetes pod runs it
mailsync api                                 the accounts HTTP API and the status page
mailsync run [--demo]                        every service in one process (and the API);
                                             embedded Kafka/MongoDB when none is configured
mailsync accounts verify|save|list|show|set-password|pause|resume|resync|remove|rotate-key
                                             manage accounts (as an admin, without HTTP)
mailsync openapi export [--check]            the API's OpenAPI document (docs/openapi.json)
mailsync activities [--account ID]           list activities (what the CRM shows)
mailsync topic NAME [--offset N] [--partition P] [--max-messages N] [--follow]
                                             print a topic's records, a JSON object a line
mailsync erase --activity ID | --message-id MID | --account ID [--since D] [--until D]
                                             delete activities now (GDPR erasure)
mailsync reconcile ACCOUNT                   compare the account's folders with MongoDB now
                                             and fetch again what is missing
mailsync schemas export [--check]            JSON Schemas of every topic and document
mailsync deploy topics [--check]             Strimzi KafkaTopics per overlay, from the registry
mailsync deploy users [--check]              Strimzi KafkaUsers (ACLs from the registry) and
                                             each workload's Kafka login, for prod; KEDA's
                                             login (TriggerAuthentications) for prod-keda
mailsync secret-key                          a new MAILSYNC_SECRET_KEY
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from aiokafka.errors import KafkaError
from pydantic import ValidationError
from pymongo.errors import PyMongoError

from services.common.errors import ConfigurationError, MailsyncError
from services.common.lifecycle import Service, install_signal_handlers
from services.common.logs import register_secret, setup_logging
from services.common.settings import CommonSettings, invalid_settings
from services.local_run import cli_settings

if TYPE_CHECKING:
    from services.common.health import HealthServer

log = logging.getLogger("mailsync")


def _fetcher(overrides: dict[str, Any]) -> Service:
    from services.fetcher.app import FetcherApp
    from services.fetcher.settings import FetcherSettings

    return FetcherApp(FetcherSettings(**overrides))


def _dedup(overrides: dict[str, Any]) -> Service:
    from services.dedup.app import DedupApp
    from services.dedup.settings import DedupSettings

    return DedupApp(DedupSettings(**overrides))


def _writer(overrides: dict[str, Any]) -> Service:
    from services.activity_writer.app import ActivityWriterApp
    from services.activity_writer.settings import WriterSettings

    return ActivityWriterApp(WriterSettings(**overrides))


def _sender(overrides: dict[str, Any]) -> Service:
    from services.sender.app import SenderApp
    from services.sender.settings import SenderSettings

    return SenderApp(SenderSettings(**overrides))


def _api(overrides: dict[str, Any]) -> Service:
    from services.api.app import ApiApp
    from services.api.settings import ApiSettings

    return ApiApp(ApiSettings(**overrides))


SERVICES: dict[str, Callable[[dict[str, Any]], Service]] = {
    "fetcher": _fetcher,
    "dedup": _dedup,
    "activity-writer": _writer,
    "sender": _sender,
}


async def _run(
    services: Sequence[Service],
    settings: CommonSettings,
    *,
    local: bool = False,
    on_listening: Callable[[HealthServer], None] | None = None,
) -> None:
    from services.common.process import run_process

    stop = asyncio.Event()
    install_signal_handlers(stop)
    await run_process(services, settings, stop, local=local, on_listening=on_listening)


def cmd_service(name: str) -> int:
    settings = CommonSettings()
    setup_logging(settings.log_level, settings.log_format)
    _register_secrets(settings)
    make = _api if name == "api" else SERVICES[name]
    asyncio.run(_run([make({})], settings))
    return 0


# What `mailsync run` starts, only in a source checkout with the dev extra (not the image).
_DEV_MODULES = {"devservers", "aiosmtpd", "secantusdb"}


def cmd_run(demo: bool) -> int:
    try:
        from services.embedded import embedded
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in _DEV_MODULES:
            raise
        print(
            f"mailsync: `mailsync run` needs the dev servers ({exc.name} is not installed):"
            " install mailsync[dev] from a source checkout (`make venv`), or run the"
            " services one by one against your Kafka and MongoDB (`mailsync fetcher`...)",
            file=sys.stderr,
        )
        return 2
    settings = CommonSettings()
    # A terminal, not a log collector: text, unless MAILSYNC_LOG_FORMAT says otherwise;
    # and the metrics port on loopback only, unless MAILSYNC_METRICS_HOST says otherwise.
    chosen = settings.model_fields_set
    setup_logging(settings.log_level, settings.log_format if "log_format" in chosen else "text")
    _register_secrets(settings)
    with embedded(settings) as overrides, contextlib.ExitStack() as stack:
        if "metrics_host" not in chosen:
            overrides["metrics_host"] = "127.0.0.1"
        base = CommonSettings(**overrides)  # type: ignore[arg-type]
        if demo:
            from services.demo_run import start_demo

            overrides.update(stack.enter_context(start_demo(base)))
        services = [make(overrides) for make in SERVICES.values()]
        status_url = _embedded_api(overrides)
        services.append(_api(overrides))
        final = CommonSettings(**overrides)  # type: ignore[arg-type]
        _register_secrets(final)
        from services import local_run

        local_run.announce(
            final.data_dir,
            final.kafka_bootstrap,
            final.mongo_uri.get_secret_value() if final.mongo_uri else None,
        )
        stack.callback(local_run.withdraw, final.data_dir)
        asyncio.run(
            _run(
                services,
                final,
                local=True,
                on_listening=lambda h: _print_where(
                    final, h, status_url, key_made="secret_key" not in chosen
                ),
            )
        )
    print("mailsync stopped cleanly.", flush=True)
    return 0


def _register_secrets(s: CommonSettings) -> None:
    for secret in (s.mongo_uri, s.secret_key):
        if secret is not None:
            register_secret(secret.get_secret_value())
    if s.secret_key is not None:
        for key in s.secret_key.get_secret_value().split(","):
            register_secret(key.strip())


def _embedded_api(overrides: dict[str, Any]) -> str:
    """The API of ``mailsync run``: the configured port or a free one, and an admin token
    made for this run when none is configured. Returns the status page's URL."""
    import json
    import secrets

    from pydantic import SecretStr

    from devservers._process import free_port
    from services.api.settings import ApiSettings

    api = ApiSettings(**overrides)
    port = api.api_port or free_port()
    overrides["api_port"] = port
    url = f"http://{api.api_host}:{port}/status"
    if api.api_tokens is None and api.api_tokens_file is None:
        token = secrets.token_urlsafe(24)
        admin = {"user_id": "operator", "groups": [], "role": "admin"}
        overrides["api_tokens"] = SecretStr(json.dumps({token: admin}))
        return f"{url}#token={token}"
    return f"{url}#token=YOUR_API_TOKEN"


def _print_where(
    s: CommonSettings, health: HealthServer, status_url: str, *, key_made: bool
) -> None:
    import shlex

    from schemas.topics import ACTIVITY_EVENTS
    from services.local_run import KEY_FILE

    mongo = s.mongo_uri.get_secret_value() if s.mongo_uri else "?"
    web = f"http://{health.host}:{health.port}"
    events = s.topic(ACTIVITY_EVENTS)
    # The admin CLI in this directory finds the run by itself (services/local_run.py);
    # elsewhere, these exports point it here (the key by its file, not printed).
    exports = (
        f"MAILSYNC_KAFKA_BOOTSTRAP={s.kafka_bootstrap} MAILSYNC_MONGO_URI={shlex.quote(mongo)}"
    )
    if key_made:
        exports += f' MAILSYNC_SECRET_KEY="$(cat {shlex.quote(str(s.data_dir / KEY_FILE))})"'
    print(
        "\n"
        "mailsync is running. Press Ctrl+C to stop.\n"
        f"  Status page     : {status_url}\n"
        f"  Kafka bootstrap : {s.kafka_bootstrap}\n"
        f"  MongoDB         : {mongo}  (database {s.mongo_database!r})\n"
        f"  Admin CLI       : .venv/bin/mailsync accounts list  (in this directory it finds"
        f" this run through {s.data_dir})\n"
        f"  Elsewhere       : export {exports}\n"
        "  Activities      : .venv/bin/mailsync activities\n"
        "  A topic         : .venv/bin/mailsync topic mailsync.tagged-messages\n"
        f"  With kcat       : kcat -C -b {s.kafka_bootstrap} -t {events} -o beginning -e -J\n"
        f"  Metrics         : {web}/metrics  (Prometheus)\n"
        f"  Health          : {web}/readyz  {web}/livez\n",
        flush=True,
    )


def cmd_activities(account: str | None, limit: int) -> int:
    """The newest activities, a line each under a header (what the CRM shows)."""
    from services.accounts.records import COLLECTION
    from services.common.mongo import database, mongo_client
    from services.text_width import fit

    settings = cli_settings(CommonSettings)
    columns = [("DATE (UTC)", 16), ("DIRECTION", 9), ("FROM", 34), ("SUBJECT", 60)]

    async def show() -> bool:
        client = mongo_client(settings, app_name="mailsync-cli")
        try:
            db = database(client, settings)
            if account is not None:
                known = await db[COLLECTION].find_one({"_id": account}, {"_id": 1})
                if known is None and not await db["account_states"].find_one({"_id": account}):
                    return False
            query = {"account_ids": account} if account else {}
            found = await db["activities"].find(query).sort("date", -1).to_list(limit)
            print("  ".join(fit(name, width) for name, width in columns) + "  SIGHTINGS")
            for doc in found:
                sightings = ", ".join(
                    f"{s['account_id']}:{s['folder']}{' (dup)' if s['duplicate'] else ''}"
                    for s in doc.get("sightings", [])
                )
                sender = (doc.get("from") or {}).get("address", "?")
                date = doc["date"].strftime("%Y-%m-%d %H:%M") if doc.get("date") else "?"
                cells = [date, doc["direction"], sender, doc["subject"]]
                line = "  ".join(fit(c, w) for c, (_, w) in zip(cells, columns, strict=True))
                print(f"{line}  [{sightings}]")
        finally:
            await client.close()
        return True

    if not asyncio.run(show()):
        print(f"mailsync activities: no account {account!r}", file=sys.stderr)
        return 1
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    """Delete activities now: one activity, one message, or an account's (date range).
    Asks first (``--yes`` does not); ``--dry-run`` only counts."""
    from schemas.topics import ACTIVITY_EVENTS
    from services.activity_writer.erasure import Eraser
    from services.common.blobs import BlobStore
    from services.common.kafka import ensure_topics, producer
    from services.common.mongo import database, mongo_client

    settings = cli_settings(CommonSettings)
    date: dict[str, dt.datetime] = {}
    if args.since:
        date["$gte"] = dt.datetime.combine(args.since, dt.time(), dt.UTC)
    if args.until:
        date["$lt"] = dt.datetime.combine(args.until, dt.time(), dt.UTC)
    query: dict[str, Any]
    if args.activity:
        query = {"_id": args.activity}
    elif args.message_id:
        query = {"message_id": args.message_id.strip("<>")}
    else:
        query = {"account_ids": args.account, **({"date": date} if date else {})}

    async def erase() -> str:
        client = mongo_client(settings, app_name="mailsync-cli")
        try:
            db = database(client, settings)
            found = await db["activities"].count_documents(query)
            what = f"{found} activities" + (f" of account {args.account}" if args.account else "")
            if args.dry_run or not found:
                return (
                    f"{what} would be erased (dry run: nothing changed)"
                    if found
                    else ("no activity matches: nothing to erase")
                )
            if not args.yes and not _confirm(f"Erase {what}? This cannot be undone [y/N] "):
                return "nothing erased"
            await ensure_topics(settings, [ACTIVITY_EVENTS])
            prod = producer(settings, client_id="mailsync-cli")
            await prod.start()
            try:
                eraser = Eraser(db, BlobStore(db), prod, settings.topic(ACTIVITY_EVENTS))
                reason = f"erased on request ({args.reason})"
                if not args.account:
                    return f"{await eraser.erase(query, reason)} activities erased"
                done = await eraser.remove_account(args.account, date or None, reason)
                return f"{done.deleted} activities erased, {done.trimmed} kept for other accounts"
            finally:
                await prod.stop()
        finally:
            await client.close()

    print(asyncio.run(erase()))
    return 0


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        raise ConfigurationError("no terminal to confirm on: pass --yes (or --dry-run)")
    return input(question).strip().lower() in ("y", "yes")


def cmd_reconcile(account_id: str) -> int:
    """Ask the fetcher syncing the account to reconcile it on its next poll."""
    from schemas.mailbox_state import AccountState, AccountStatus
    from services.accounts.records import COLLECTION
    from services.api.account_states import live_states
    from services.api.liveness import live_status
    from services.common.mongo import database, mongo_client
    from services.fetcher.reconcile_requests import ReconcileRequests

    settings = cli_settings(CommonSettings)

    async def request() -> tuple[bool, AccountState | None]:
        client = mongo_client(settings, app_name="mailsync-cli")
        try:
            db = database(client, settings)
            stored = await db[COLLECTION].find_one({"_id": account_id}, {"_id": 1})
            state = (await live_states(db, [account_id])).get(account_id)
            if stored is None and state is None:
                return False, None  # neither saved nor ever synced: nothing would answer
            await ReconcileRequests(db).request(account_id)
            return True, state
        finally:
            await client.close()

    known, state = asyncio.run(request())
    if not known:
        print(f"mailsync reconcile: no account {account_id!r}", file=sys.stderr)
        return 1
    status = live_status(state, dt.datetime.now(dt.UTC))[0] if state else None
    if status in (None, AccountStatus.NOT_RUNNING):
        print(
            f"reconcile of {account_id} requested, but no fetcher is running the account: "
            "it is done when a fetcher takes the account up"
        )
        return 0
    print(f"reconcile of {account_id} requested: its fetcher does it on its next poll")
    return 0


def cmd_topic(args: argparse.Namespace) -> int:
    """Print a topic's records as they are read, one JSON object per line (see
    ``services/topic_lines.py``). 1 when the topic or partition does not exist."""
    import json
    import os
    import signal

    from aiokafka.errors import KafkaError

    from services.common.errors import MailsyncError
    from services.common.kafka import client_options, connect_error
    from services.topic_lines import as_json
    from services.topic_reader import Start, stream

    settings = cli_settings(CommonSettings)
    start: Start = "end" if args.from_end else "beginning"
    if args.offset is not None:
        start = args.offset

    async def show() -> None:
        records = stream(
            client_options(settings),
            args.name,
            prefix=settings.topic_prefix,
            start=start,
            partitions=args.partition,
            follow=args.follow,
        )
        async with contextlib.aclosing(records):
            count = 0
            async for record in records:
                # A line as soon as it is read: someone may be watching (--follow).
                sys.stdout.write(json.dumps(as_json(record), ensure_ascii=False) + "\n")
                sys.stdout.flush()
                count += 1
                if count == args.max_messages:
                    return

    async def until_stopped() -> None:
        # Ctrl+C or SIGTERM ends the reading (the consumer is closed); not an error.
        task = asyncio.ensure_future(show())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    try:
        asyncio.run(until_stopped())
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python's final flush
        # of stdout from failing too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except MailsyncError as exc:
        print(f"mailsync: {exc}", file=sys.stderr)
        return 1
    except KafkaError as exc:
        print(f"mailsync: {connect_error(settings, exc)}", file=sys.stderr)
        return 1
    return 0


def cmd_schemas(check: bool) -> int:
    from schemas.export import JSON_DIR, drift, export

    if check:
        stale = drift()
        if stale:
            print(f"schemas/json is out of date: {', '.join(stale)}; run `mailsync schemas export`")
            return 1
        print("schemas/json matches the models")
        return 0
    for name in export():
        print(JSON_DIR / name)
    return 0


def cmd_deploy(what: str, check: bool) -> int:
    """Strimzi resources of the overlays: ``topics`` (KafkaTopics), ``users`` (a
    KafkaUser per service, with ACLs, each workload's login, and KEDA's login as the
    services it scales in the ``<overlay>-keda`` variant)."""
    from schemas import strimzi, strimzi_users

    module = strimzi if what == "topics" else strimzi_users
    if check:
        stale = module.drift()
        for file in stale:
            print(f"{file} is out of date; run `mailsync deploy {what}`")
        if stale:
            return 1
        print(f"deploy/overlays: the {what} files match the topic registry")
        return 0
    for file in module.write():
        print(file)
    return 0


def cmd_openapi(check: bool) -> int:
    from services.api.openapi import DOCUMENT, drifted, export

    if check:
        if drifted():
            print(f"{DOCUMENT} is out of date; run `mailsync openapi export`")
            return 1
        print(f"{DOCUMENT} matches the API")
        return 0
    print(export())
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mailsync")
    except PackageNotFoundError:  # a checkout on the path, not installed
        return "unknown (not installed)"


def _date(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def _positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return number


def main(argv: Sequence[str] | None = None) -> int:
    # The module docstring is the help text as it stands (no reST markup in it).
    parser = argparse.ArgumentParser(
        prog="mailsync", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"mailsync {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SERVICES:
        sub.add_parser(name, help=f"run the {name} service")
    sub.add_parser("api", help="run the accounts HTTP API and the status page")
    from services.api.cli import add_parser as add_accounts_parser

    add_accounts_parser(sub)
    oapi = sub.add_parser("openapi", help="the API's OpenAPI document")
    oapi.add_argument("action", choices=["export"])
    oapi.add_argument("--check", action="store_true", help="fail if docs/openapi.json is stale")
    run = sub.add_parser("run", help="run every service in one process (embedded default)")
    run.add_argument(
        "--demo", action="store_true", help="also start a demo Dovecot with two seeded mailboxes"
    )
    act = sub.add_parser("activities", help="list activities")
    act.add_argument("--account")
    act.add_argument("--limit", type=int, default=50)
    sch = sub.add_parser("schemas", help="JSON Schema export")
    sch.add_argument("action", choices=["export"])
    sch.add_argument("--check", action="store_true", help="fail if schemas/json is stale")
    sub.add_parser("secret-key", help="print a new MAILSYNC_SECRET_KEY")
    dep = sub.add_parser("deploy", help="generate deploy/ files from the registry")
    dep.add_argument(
        "what",
        choices=["topics", "users"],
        help="Strimzi KafkaTopics; KafkaUsers with their ACLs and the workloads' logins",
    )
    dep.add_argument("--check", action="store_true", help="fail if the files are stale")
    era = sub.add_parser("erase", help="delete activities now (GDPR erasure)")
    which = era.add_mutually_exclusive_group(required=True)
    which.add_argument("--activity", help="one activity id")
    which.add_argument("--message-id", help="every activity of this Message-ID")
    which.add_argument("--account", help="an account's activities (with --since/--until)")
    era.add_argument("--since", type=_date, help="from this date (YYYY-MM-DD), with --account")
    era.add_argument("--until", type=_date, help="before this date (YYYY-MM-DD), with --account")
    era.add_argument("--reason", default="GDPR", help="recorded in the deleted events")
    era.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    era.add_argument("--dry-run", action="store_true", help="count what would go; erase nothing")
    rec = sub.add_parser("reconcile", help="compare an account with MongoDB, refetch gaps")
    rec.add_argument("account", help="account id")
    top = sub.add_parser(
        "topic",
        help="print a topic's records, one JSON object per line",
        description="Print a topic's records as they are read, one JSON object per line "
        "(topic, partition, offset, timestamp, key, headers, size, and value, or meta for "
        "messages). No consumer group: nothing is committed. Starts at the beginning of "
        "every partition and stops at the end offsets seen at start, unless told otherwise.",
    )
    top.add_argument("name", help="topic name, with or without MAILSYNC_TOPIC_PREFIX")
    where = top.add_mutually_exclusive_group()
    where.add_argument(
        "--from-beginning",
        action="store_true",
        help="start at every partition's first record (the default)",
    )
    where.add_argument(
        "--from-end", action="store_true", help="only records written from now on (with --follow)"
    )
    where.add_argument(
        "--offset",
        type=int,
        metavar="N",
        help="start at offset N in every partition; -N: its last N records",
    )
    top.add_argument(
        "--partition", type=int, action="append", metavar="P", help="only partition P (repeatable)"
    )
    top.add_argument("--max-messages", type=_positive, metavar="N", help="stop after N records")
    top.add_argument(
        "--follow", action="store_true", help="keep waiting for new records until Ctrl+C"
    )
    args = parser.parse_args(argv)
    if args.command not in (*SERVICES, "api", "run"):
        # A one-off command reports a broker that is away in its own one line; the
        # client's log lines of each failed try would only repeat it.
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        if args.command in SERVICES or args.command == "api":
            return cmd_service(args.command)
        if args.command == "accounts":
            from services.api.cli import run as run_accounts

            return run_accounts(args)
        if args.command == "openapi":
            return cmd_openapi(args.check)
        if args.command == "run":
            return cmd_run(args.demo)
        if args.command == "activities":
            return cmd_activities(args.account, args.limit)
        if args.command == "schemas":
            return cmd_schemas(args.check)
        if args.command == "deploy":
            return cmd_deploy(args.what, args.check)
        if args.command == "erase":
            return cmd_erase(args)
        if args.command == "topic":
            return cmd_topic(args)
        if args.command == "reconcile":
            return cmd_reconcile(args.account)
        if args.command == "secret-key":
            from services.common.secrets import SecretBox

            print(SecretBox.new_key())
            return 0
    except ConfigurationError as exc:
        # One line, no traceback: the message names the settings to fix.
        print(f"mailsync: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(f"mailsync: invalid settings: {invalid_settings(exc)}", file=sys.stderr)
        return 2
    except PyMongoError as exc:
        # Before any service runs (the admin commands): the database is away.
        from services.common.mongo import unreachable

        print(f"mailsync: {unreachable(exc)}", file=sys.stderr)
        return 1
    except KafkaError as exc:
        from services.common.kafka import connect_error

        print(f"mailsync: {connect_error(cli_settings(CommonSettings), exc)}", file=sys.stderr)
        return 1
    except MailsyncError as exc:
        # A dependency away at start (KafkaUnavailable...): one line too; a failure while
        # running was logged with its traceback where it happened. Non-zero either way,
        # so Kubernetes restarts the pod.
        print(f"mailsync: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
