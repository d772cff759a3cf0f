"""An account's state belongs to a live fetcher (issue 15): once none runs it, the API,
the status page and the CLI say ``not_running``, never the last status it stored."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import pytest

from services.fetcher.state import StateStore
from tests.fixtures.api import Api
from tests.fixtures.pipeline import Env, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def cli(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services", *args],
        env=env.environ(),
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_a_state_nobody_refreshes_is_not_running(env: Env, api: Api, pipeline: Any) -> None:
    jana = env.mail_user("live")
    client = api.client("u-jana")
    imap = {"host": "127.0.0.1", "port": env.dovecot.imaps_port, "username": jana.address}
    created = await client.post(
        "/v1/accounts", json={"address": jana.address, "imap": imap, "password": jana.password}
    )
    account_id = created.json()["account_id"]

    async def status(wanted: str) -> dict[str, Any] | None:
        view = (await client.get(f"/v1/accounts/{account_id}")).json()
        page = (await client.get("/v1/status")).json()
        (row,) = [a for a in page["accounts"] if a["account_id"] == account_id]
        states = [view.get("state") or {}, row.get("state") or {}]
        return states[0] if all(s.get("status") == wanted for s in states) else None

    async with pipeline("fetcher"):
        await eventually(lambda: status("idle"), timeout=90, what="idle")
    # The fetcher stopped: it released the account.
    stopped = await eventually(lambda: status("not_running"), timeout=10, what="not_running")
    assert "no fetcher" in stopped["reason"]
    shown = cli(env, "accounts", "show", account_id)
    assert json.loads(shown.stdout)["state"]["status"] == "not_running", shown.stderr

    # A fetcher killed (no release): its heartbeat stops, and a few poll intervals
    # later (the env's is 2 s: 10 s at least) the state is stale.
    with pytest.MonkeyPatch.context() as patch:

        async def killed(self: StateStore, account_ids: list[str]) -> None:
            return None

        patch.setattr(StateStore, "released", killed)
        async with pipeline("fetcher"):
            await eventually(lambda: status("idle"), timeout=90, what="idle again")
        assert await status("idle")  # its last word, for now
        loop = asyncio.get_running_loop()
        began = loop.time()
        await eventually(lambda: status("not_running"), timeout=30, what="stale: not_running")
        assert loop.time() - began > 5

    asked = cli(env, "reconcile", account_id)
    assert asked.returncode == 0 and "no fetcher is running" in asked.stdout, asked
    unknown = cli(env, "reconcile", "nobody-" + account_id)
    assert unknown.returncode == 1 and "no account" in unknown.stderr, unknown
