"""The fetcher under failure: a connection kicked mid-FETCH, a replica killed outright."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaClient
from aiokafka.partitioner import murmur2
from aiokafka.protocol.group import JoinGroupRequest
from pymongo import monitoring

from devservers.corpus import build
from schemas.topics import ACCOUNTS, RAW_MESSAGES
from services.topic_reader import read_topic
from tests.fixtures.mongo_commands import SentCommands
from tests.fixtures.pipeline import Env, Pipeline, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CUSTOMER = ("Jürgen Weiß", "j.weiss@weiss-maschinenbau.de")


def fill(env: Env, address: str, count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    start = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    ids = []
    for i in range(count):
        mail = build(rng, CUSTOMER, [("X", address)], date=start + dt.timedelta(hours=i))
        env.dovecot.deliver(address, mail.message)
        ids.append(mail.message_id)
    return ids


async def test_connection_kicked_mid_fetch_resumes_without_loss(
    env: Env, pipeline: Pipeline
) -> None:
    user = env.mail_user("kick")
    account = env.account(user, account_id=f"kick-{env.overrides['mongo_database']}")
    await env.publish_accounts(account)
    ids = fill(env, user.address, 600, seed=61)

    # A checkpoint every batch: the import is seen midway by its cursor.
    settings = {"fetcher_batch_size": 50, "fetcher_checkpoint_s": 0.0}
    async with env.mongo() as db, pipeline(**settings) as running:

        async def partly() -> bool:
            running.check()
            cur = await db.folder_cursors.find_one({"_id": f"{account.account_id}/INBOX"})
            return bool(cur) and 0 < cur["last_uid"] < 600

        await eventually(partly, timeout=90, interval=0.05, what="the import to be under way")
        env.dovecot.doveadm("kick", user.address)  # every IMAP connection of the user drops

        async def complete() -> bool:
            running.check()
            return bool(await db.activities.count_documents({}) == 600)

        await eventually(complete, timeout=180, what="all 600 activities after the kick")
        docs = await db.activities.find({}, {"message_id": 1, "sightings": 1}).to_list(None)
    assert sorted(d["message_id"] for d in docs) == sorted(ids)
    assert all(len(d["sightings"]) == 1 for d in docs)


async def test_connection_dropped_during_idle_reconnects_at_once(
    env: Env, pipeline: Pipeline
) -> None:
    """A server restart or a NAT timeout drops the IDLE connection: new mail must not
    wait for the IDLE period (25 min) or a command timeout to be noticed."""
    user = env.mail_user("idlekick")
    account = env.account(user, account_id=f"idlekick-{env.overrides['mongo_database']}")
    await env.publish_accounts(account)
    fill(env, user.address, 1, seed=62)
    # Long command timeouts: only noticing the lost connection itself can be quick.
    async with env.mongo() as db, pipeline(fetcher_imap_timeout_s=120.0) as running:

        async def idle() -> bool:
            running.check()
            state = await db.account_states.find_one({"_id": account.account_id})
            count = await db.activities.count_documents({})
            return bool(state) and state["status"] == "idle" and count == 1

        await eventually(idle, timeout=90, what="the account to be idle")
        await asyncio.sleep(1)  # in IDLE now
        env.dovecot.doveadm("kick", user.address)
        await asyncio.sleep(0.5)
        fill(env, user.address, 1, seed=63)

        async def arrived() -> bool:
            running.check()
            return bool(await db.activities.count_documents({}) == 2)

        await eventually(arrived, timeout=20, what="the mail delivered after the drop")


class _CursorReads(SentCommands):
    """The ``find`` commands sent on ``folder_cursors`` by any client created after it
    was registered, while ``recording``: what the database is asked, whoever asks."""

    def __init__(self) -> None:
        self.recording = False
        self.reads: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        cursors = event.command_name == "find" and event.command["find"] == "folder_cursors"
        if self.recording and cursors:
            self.reads.append(dict(event.command.get("filter", {})))


# Registered once: pymongo keeps a global listener for the process's life.
_CURSOR_READS = _CursorReads()
monitoring.register(_CURSOR_READS)


async def test_a_reconnect_goes_on_from_its_cursors_without_reading_them_again(
    env: Env, pipeline: Pipeline
) -> None:
    """A server restart makes every account reconnect at once: each retry went back to
    MongoDB for its cursors (two reads an account, 18% of the fetcher's time in a storm
    at 10,000 accounts). A retry now goes on with the cursors its run before left."""
    user = env.mail_user("reread")
    account = env.account(user, account_id=f"reread-{env.overrides['mongo_database']}")
    await env.publish_accounts(account)
    fill(env, user.address, 2, seed=64)
    raw_messages = env.settings.topic(RAW_MESSAGES)
    reads = _CURSOR_READS
    reads.recording, reads.reads = True, []
    try:
        # Only the fetcher: the test's own reads of the cursors come after the recording.
        async with env.mongo() as db, pipeline("fetcher", fetcher_imap_timeout_s=120.0) as running:

            async def idle_after(count: int) -> bool:
                running.check()
                state = await db.account_states.find_one({"_id": account.account_id})
                records = await read_topic(env.overrides["kafka_bootstrap"], raw_messages)
                published = sum(1 for r in records if r.key == account.account_id.encode())
                return bool(state) and state["status"] == "idle" and published == count

            await eventually(lambda: idle_after(2), timeout=90, what="the first 2 messages")
            first_run = list(reads.reads)
            await asyncio.sleep(1)  # in IDLE now
            env.dovecot.doveadm("kick", user.address)
            await asyncio.sleep(0.5)
            fill(env, user.address, 1, seed=65)
            await eventually(lambda: idle_after(3), timeout=30, what="the mail after the drop")
            reads.recording = False
            cursor = await db.folder_cursors.find_one({"_id": f"{account.account_id}/INBOX"})
    finally:
        reads.recording = False
    assert first_run, "the first run read its cursors"
    assert reads.reads == first_run, "the retry read none"
    assert cursor is not None and cursor["last_uid"] == 3 and cursor["uids"] == "1:3"


def _fetcher_process(env: Env, log: Path, **extra: str) -> subprocess.Popen[bytes]:
    environ = env.environ(data_dir=str(log.parent / "replica-data"), **extra)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "services", "fetcher"], env=environ, stdout=out, stderr=out
        )


def _end_replica(other: subprocess.Popen[bytes] | None, log: Path) -> None:
    """Kill the replica if it still runs, and print its log: pytest shows a failed
    test's output, and the replica's side of a rebalance is half of what happened."""
    if other is not None and other.poll() is None:
        other.kill()
        other.wait()
    if log.exists():
        print(f"--- {log.name} ---\n{log.read_text(errors='replace')[-30000:]}")


def _spread_ids(suffix: str, count: int) -> list[str]:
    """Account ids on ``count`` distinct partitions of the accounts topic (the producer's
    murmur2 of the key, as Kafka's default partitioner): however the group splits the 8
    partitions between two replicas, each holds some accounts."""
    ids: list[str] = []
    taken: set[int] = set()
    for n in range(1000):
        account_id = f"r{n}-{suffix}"
        partition = (murmur2(account_id.encode()) & 0x7FFFFFFF) % ACCOUNTS.partitions
        if partition not in taken:
            taken.add(partition)
            ids.append(account_id)
        if len(ids) == count:
            return ids
    raise AssertionError("no spread of account ids found")


async def test_a_killed_replica_hands_its_accounts_over(
    env: Env, pipeline: Pipeline, tmp_path: Path
) -> None:
    suffix = env.overrides["mongo_database"]
    users = [env.mail_user(f"r{i}") for i in range(6)]
    ids = _spread_ids(suffix, len(users))
    accounts = [env.account(u, account_id=i) for i, u in zip(ids, users, strict=True)]
    await env.publish_accounts(*accounts)
    for i, u in enumerate(users):
        fill(env, u.address, 3, seed=70 + i)

    other = _fetcher_process(env, tmp_path / "replica.log")
    try:
        async with env.mongo() as db, pipeline() as running:
            here = running.services[0].worker_id

            async def split() -> set[str] | None:
                running.check()
                assert other.poll() is None, "the other replica exited"
                states = await db.account_states.find().to_list(None)
                # No worker: released by one replica, not yet taken up by the other.
                idle = all(s["status"] == "idle" and s["worker"] for s in states)
                workers = {s["worker"] for s in states}
                return workers if len(states) == 6 and idle and len(workers) == 2 else None

            workers = await eventually(split, timeout=120, what="both replicas to hold accounts")
            assert here in workers
            theirs = [
                s["_id"]
                for s in await db.account_states.find().to_list(None)
                if s["worker"] != here
            ]
            assert theirs

            other.send_signal(signal.SIGKILL)  # no goodbye: the group notices by timeout
            other.wait(10)
            late = {a.account_id: a for a in accounts}
            new_ids = []
            for n, account_id in enumerate(theirs):
                user = next(u for u in users if late[account_id].address == u.address)
                # Seeds apart from the first mail's (70-75): one seed, one Message-ID, and
                # two messages with one would be one activity (hash() % 1000 once gave 73).
                new_ids += fill(env, user.address, 1, seed=80 + n)

            async def taken_over() -> bool:
                running.check()
                states = {s["_id"]: s for s in await db.account_states.find().to_list(None)}
                found = await db.activities.count_documents({"message_id": {"$in": new_ids}})
                return found == len(new_ids) and all(states[a]["worker"] == here for a in theirs)

            await eventually(taken_over, timeout=120, what="this replica to take over")

            async def all_written() -> int:
                # Every account's mail, the first 18 too: their activities come through
                # this process's writer, partition by partition, not in the order taken.
                running.check()
                total: int = await db.activities.count_documents({})
                return total if total >= 6 * 3 + len(theirs) else 0

            total = await eventually(all_written, timeout=60, what="every activity")
            assert total == 6 * 3 + len(theirs)
            docs = await db.activities.find({}, {"sightings": 1}).to_list(None)
            assert all(len(d["sightings"]) == 1 for d in docs)
            await asyncio.sleep(0)
    finally:
        _end_replica(other, tmp_path / "replica.log")


async def test_a_lone_replica_joins_the_accounts_group_in_one_generation(
    env: Env, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One JoinGroup per join: aiokafka 0.14 sent one per assignor, and the second (our
    protocol and roundrobin) started a new rebalance (services/fetcher/membership.py)."""
    await env.publish_accounts()  # the topic, with no account
    group = env.overrides["fetcher_group"]
    joins: list[list[str]] = []  # the protocols of each JoinGroup the broker got
    send = AIOKafkaClient.send

    async def recorded(client: AIOKafkaClient, node_id: int, request: Any, **kw: Any) -> Any:
        if isinstance(request, JoinGroupRequest) and request._group == group:
            joins.append([name for name, _ in request._group_protocols])
        return await send(client, node_id, request, **kw)

    monkeypatch.setattr(AIOKafkaClient, "send", recorded)
    async with pipeline("fetcher") as running:

        async def held() -> Any:
            running.check()
            consumer = running.services[0]._consumer  # set once the fetcher has started
            return (
                consumer if consumer and len(consumer.assignment()) == ACCOUNTS.partitions else None
            )

        consumer = await eventually(held, timeout=60, what="the replica to hold every partition")
        assert consumer._coordinator.generation == 1
    # Some twice (a member id asked for first, KIP-394; a coordinator not ready yet).
    assert joins and all(j == ["mailsync-sticky", "roundrobin"] for j in joins)


async def test_two_replicas_started_together_both_run_accounts(
    env: Env, pipeline: Pipeline
) -> None:
    """Two replicas starting at the same moment (a deployment's pods) split the accounts
    and idle them. Each failed the other's SyncGroup for minutes before join_once (CI:
    neither held an account after 120 s; here 3 runs in 14)."""
    suffix = env.overrides["mongo_database"]
    users = [env.mail_user(f"t{i}") for i in range(6)]
    ids = _spread_ids(suffix, len(users))
    await env.publish_accounts(
        *(env.account(u, account_id=i) for i, u in zip(ids, users, strict=True))
    )
    async with env.mongo() as db, pipeline("fetcher", "fetcher") as running:
        replicas = {r.worker_id for r in running.services}

        async def split() -> bool:
            running.check()
            states = await db.account_states.find().to_list(None)
            idle = all(s["status"] == "idle" for s in states)
            return len(states) == 6 and idle and {s["worker"] for s in states} == replicas

        await eventually(split, timeout=90, what="both replicas to idle accounts")


async def test_a_replica_restarted_under_its_name_moves_no_account(
    env: Env, pipeline: Pipeline, tmp_path: Path
) -> None:
    """Static membership: the other replica is killed and restarted under the same name
    within the session; it gets its own accounts back, and the accounts of this replica
    never stop (no gap in their IDLE: Dovecot sees the very same sessions all along).

    This replica joins first, so it leads the group: a restarted *leader* still causes
    a rebalance, as aiokafka 0.14 speaks JoinGroup v5, before KIP-814 let a static
    leader rejoin without one."""
    env.overrides["instance_id"] = "fetcher-a"
    suffix = env.overrides["mongo_database"]
    users = [env.mail_user(f"s{i}") for i in range(6)]
    ids = _spread_ids(suffix, len(users))
    accounts = [env.account(u, account_id=i) for i, u in zip(ids, users, strict=True)]
    await env.publish_accounts(*accounts)
    log = tmp_path / "replica.log"
    other: subprocess.Popen[bytes] | None = None
    try:
        async with env.mongo() as db, pipeline() as running:
            here = running.services[0].worker_id

            async def all_here() -> bool:
                running.check()
                states = await db.account_states.find().to_list(None)
                return len(states) == 6 and all(s["worker"] == here for s in states)

            await eventually(all_here, timeout=120, what="this replica to hold every account")
            other = _fetcher_process(env, log, instance_id="fetcher-b")

            async def split() -> dict[str, dict[str, object]] | None:
                running.check()
                states = {s["_id"]: s for s in await db.account_states.find().to_list(None)}
                idle = all(s["status"] == "idle" for s in states.values())
                # No worker: released by this replica, not yet taken up by the other.
                workers = {s["worker"] for s in states.values()}
                taken = None not in workers
                return states if len(states) == 6 and idle and taken and len(workers) == 2 else None

            first = await eventually(split, timeout=120, what="both replicas to hold accounts")
            await asyncio.sleep(3)  # settled: the join's rebalance is over
            before = await split()
            assert before is not None
            assert {a: s["worker"] for a, s in before.items()} == {
                a: s["worker"] for a, s in first.items()
            }
            address = {a.account_id: a.address for a in accounts}
            mine = {a: _sessions(env, address[a]) for a, s in before.items() if s["worker"] == here}
            theirs = set(before) - set(mine)
            assert mine and theirs and all(mine.values())

            other.send_signal(signal.SIGKILL)
            other.wait(10)
            other = _fetcher_process(env, log, instance_id="fetcher-b")
            gaps: list[str] = []

            async def back() -> bool:
                running.check()
                assert other is not None and other.poll() is None, "the restart exited"
                states = {s["_id"]: s for s in await db.account_states.find().to_list(None)}
                gaps.extend(
                    a
                    for a, sessions in mine.items()
                    if states[a]["status"] != "idle" or _sessions(env, address[a]) != sessions
                )
                assert not any(states[a]["worker"] == here for a in theirs), "theirs moved"
                restarted = {states[a]["worker"] for a in theirs}
                return all(states[a]["status"] == "idle" for a in theirs) and (
                    restarted.isdisjoint({here, before[next(iter(theirs))]["worker"]})
                )

            await eventually(back, timeout=60, interval=0.2, what="the restarted replica")
            assert gaps == []
            new_ids = []
            for i, u in enumerate(users):
                new_ids += fill(env, u.address, 1, seed=90 + i)

            async def arrived() -> bool:
                running.check()
                found = await db.activities.count_documents({"message_id": {"$in": new_ids}})
                return bool(found == len(new_ids))

            await eventually(arrived, timeout=60, what="new mail in every account")
            assert all(_sessions(env, address[a]) == sessions for a, sessions in mine.items())
    finally:
        _end_replica(other, tmp_path / "replica.log")


def _sessions(env: Env, address: str) -> frozenset[str]:
    """The IMAP sessions Dovecot holds for this user now (their processes)."""
    lines = env.dovecot.doveadm("who", "-1", address).splitlines()[1:]
    return frozenset(
        " ".join(line.split()[2:]) for line in lines if line.split()[:2] == [address, "imap"]
    )


def _all_sessions(env: Env) -> dict[str, frozenset[str]]:
    """The IMAP sessions Dovecot holds now, by user (one ``doveadm who`` for all)."""
    sessions: dict[str, set[str]] = {}
    for line in env.dovecot.doveadm("who", "-1").splitlines()[1:]:
        fields = line.split()
        if len(fields) > 2 and fields[1] == "imap":
            sessions.setdefault(fields[0], set()).add(" ".join(fields[2:]))
    return {user: frozenset(s) for user, s in sessions.items()}


async def test_a_joining_replica_moves_only_the_accounts_it_takes(
    env: Env, pipeline: Pipeline, tmp_path: Path
) -> None:
    """A second replica joins while this one holds 8 accounts (one per partition) in
    IDLE: it takes 4, and the 4 this replica keeps never leave IDLE (Dovecot sees the
    very same sessions all along). A moved account is never connected from both
    replicas: its old sessions are all gone before a new one opens."""
    env.overrides["instance_id"] = "fetcher-a"
    suffix = env.overrides["mongo_database"]
    users = [env.mail_user(f"j{i}") for i in range(8)]
    ids = _spread_ids(suffix, len(users))
    accounts = [env.account(u, account_id=i) for i, u in zip(ids, users, strict=True)]
    address = {a.account_id: a.address for a in accounts}
    await env.publish_accounts(*accounts)
    other: subprocess.Popen[bytes] | None = None
    try:
        async with env.mongo() as db, pipeline() as running:
            here = running.services[0].worker_id

            async def all_idle_here() -> bool:
                running.check()
                states = await db.account_states.find().to_list(None)
                sessions = _all_sessions(env)
                return (
                    len(states) == 8
                    and all(s["worker"] == here and s["status"] == "idle" for s in states)
                    and all(sessions.get(address[a]) for a in ids)
                )

            await eventually(all_idle_here, timeout=120, what="this replica to idle every account")
            await asyncio.sleep(1)
            sessions = _all_sessions(env)
            before = {a: sessions[address[a]] for a in ids}

            loop = asyncio.get_running_loop()
            joined = loop.time()
            other = _fetcher_process(env, tmp_path / "replica.log", instance_id="fetcher-b")
            changed: dict[str, list[frozenset[str]]] = {a: [] for a in ids}  # unseen sets
            not_idle: dict[str, int] = dict.fromkeys(ids, 0)
            both: list[str] = []

            async def settled() -> float | None:
                running.check()
                assert other is not None and other.poll() is None, "the new replica exited"
                states = {s["_id"]: s for s in await db.account_states.find().to_list(None)}
                now = _all_sessions(env)
                for a in ids:
                    current = now.get(address[a], frozenset())
                    if current != before[a]:
                        changed[a].append(current)
                    if current & before[a] and current - before[a]:
                        both.append(a)  # an old session and a new one at once
                    if states[a]["status"] != "idle":
                        not_idle[a] += 1
                theirs = [a for a in ids if states[a]["worker"] != here]
                done = len(theirs) == 4 and all(
                    states[a]["status"] == "idle"
                    and now.get(address[a])
                    and not now[address[a]] & before[a]
                    for a in theirs
                )
                return loop.time() - joined if done else None

            took = await eventually(settled, timeout=60, interval=0.2, what="4 accounts moved")
            for _ in range(15):  # and nothing else moves afterwards
                await settled()
                await asyncio.sleep(0.2)
            states = {s["_id"]: s for s in await db.account_states.find().to_list(None)}
            kept = [a for a in ids if states[a]["worker"] == here]
            moved = [a for a in ids if a not in kept]
            gaps = {a: len(changed[a]) + not_idle[a] for a in kept}
            print(f"moved {len(moved)} accounts in {took:.1f}s; IDLE gaps of the others: {gaps}")
            assert len(kept) == 4 and len(moved) == 4
            assert gaps == dict.fromkeys(kept, 0)
            assert both == []
            assert took < 30
            # The join took two generations: nothing for the newcomer while this replica
            # stopped the 4 accounts, then the 4. It did not ask for more meanwhile (it
            # once rejoined hundreds of times a second until this replica had stopped).
            joins = (tmp_path / "replica.log").read_text().count("now holds account partitions")
            assert joins <= 3, f"the new replica was assigned partitions {joins} times"

            new_ids = []
            for i, u in enumerate(users):
                new_ids += fill(env, u.address, 1, seed=110 + i)

            async def arrived() -> bool:
                running.check()
                found = await db.activities.count_documents({"message_id": {"$in": new_ids}})
                return bool(found == len(new_ids))

            await eventually(arrived, timeout=60, what="new mail in every account")
            assert all(_all_sessions(env)[address[a]] == before[a] for a in kept)
    finally:
        _end_replica(other, tmp_path / "replica.log")
