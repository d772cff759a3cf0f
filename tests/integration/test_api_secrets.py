"""Account secrets: never in clear text in logs, API answers, MongoDB or Kafka; and a key
rotation (``mailsync accounts rotate-key``) after which only the new key is needed."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from bson import json_util
from pydantic import SecretStr

from schemas.topics import ACCOUNTS
from services.common.secrets import SecretBox
from services.topic_reader import read_topic
from tests.fixtures.api import Api
from tests.fixtures.pipeline import Env, Pipeline, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


async def topic_bytes(env: Env) -> bytes:
    """Every key, value and header of every topic of this test."""
    bootstrap = env.overrides["kafka_bootstrap"]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        topics = sorted(
            t for t in await consumer.topics() if t.startswith(env.settings.topic_prefix)
        )
    finally:
        await consumer.stop()
    out = bytearray()
    for topic in topics:
        for r in await read_topic(bootstrap, topic):
            out += (r.key or b"") + (r.value or b"") + b"".join(r.headers.values())
    return bytes(out)


async def test_secrets_never_in_clear_and_key_rotation(
    env: Env, api: Api, pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    suffix = env.overrides["mongo_database"]
    password = f"S3cr3t-{suffix}-pw"
    user = env.dovecot.add_user(f"secret-{suffix}@example.com", password)
    client = api.client("u-jana")
    answers: list[httpx.Response] = []

    async def call(method: str, url: str, **kw: Any) -> httpx.Response:
        response = await client.request(method, url, **kw)
        answers.append(response)
        return response

    imap = {"host": "127.0.0.1", "port": env.dovecot.imaps_port, "username": user.address}
    smtp = {**imap, "port": env.smtp.port, "security": "starttls"}
    assert await call("POST", "/v1/accounts/verify", json={"imap": imap, "password": password})
    # An invalid request must not echo its body (FastAPI's default 422 would).
    invalid = await call(
        "POST", "/v1/accounts/verify", json={"imap": {"port": "x"}, "password": password}
    )
    assert invalid.status_code == 422
    created = await call(
        "POST",
        "/v1/accounts",
        json={"address": user.address, "imap": imap, "smtp": smtp, "password": password},
    )
    assert created.status_code == 201, created.text
    account_id = created.json()["account_id"]
    again = await call("PUT", f"/v1/accounts/{account_id}/password", json={"password": password})
    assert again.status_code == 200

    async with pipeline("fetcher"):

        async def idle() -> bool:
            view = (await call("GET", f"/v1/accounts/{account_id}")).json()
            return bool(view["state"]) and view["state"]["status"] == "idle"

        await eventually(idle, timeout=60, what="account synced")
        await call("GET", "/v1/accounts")
        await call("GET", "/v1/mailboxes")

    clear = password.encode()
    assert not [r.url for r in answers if clear in r.content]
    assert password not in caplog.text
    async with env.mongo() as db:
        dump = ""
        for name in await db.list_collection_names():
            dump += json_util.dumps(await db[name].find().to_list(None))
        stored = await db.accounts.find_one({"_id": account_id})
    assert password not in dump
    # It is there, encrypted: the key decrypts it.
    assert env.box.decrypt(stored["record"]["secret"]["ciphertext"]) == password
    assert clear not in await topic_bytes(env)

    # Rotation: re-encrypt with a new key (old one still listed), then drop the old key.
    old = env.overrides["secret_key"].get_secret_value()
    new = SecretBox.new_key()
    cli_env = env.environ(secret_key=f"{new},{old}")
    rotated = subprocess.run(
        [sys.executable, "-m", "services", "accounts", "rotate-key"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rotated.returncode == 0, rotated.stderr
    assert json.loads(rotated.stdout) == {"accounts_rotated": 1}
    listed = subprocess.run(
        [sys.executable, "-m", "services", "accounts", "list"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert [a["account_id"] for a in json.loads(listed.stdout)] == [account_id]
    assert password not in listed.stdout + listed.stderr + rotated.stderr

    only_new = SecretBox(SecretStr(new))
    async with env.mongo() as db:
        stored = await db.accounts.find_one({"_id": account_id})
    assert only_new.decrypt(stored["record"]["secret"]["ciphertext"]) == password
    records = await read_topic(env.overrides["kafka_bootstrap"], env.settings.topic(ACCOUNTS))
    latest = json.loads([r for r in records if r.key == account_id.encode()][-1].value or b"")
    assert only_new.decrypt(latest["secret"]["ciphertext"]) == password

    # A fetcher that has only the new key syncs the account.
    async with env.mongo() as db, pipeline("fetcher", secret_key=SecretStr(new)):
        since = stored["saved_at"]

        async def idle_with_new_key() -> bool:
            state = await db.account_states.find_one({"_id": account_id})
            return bool(state) and state["status"] == "idle" and state["since"].isoformat() > since

        await eventually(idle_with_new_key, timeout=60, what="synced with the new key only")
