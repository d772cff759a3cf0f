"""Operations over HTTP: resync imports again without doubling activities; removing with
purge deletes the account's activities and stops it."""

from __future__ import annotations

from typing import Any, cast

import pytest

from schemas.topics import ACCOUNTS
from services.topic_reader import read_topic
from tests.fixtures.api import Api
from tests.fixtures.pipeline import Env, Pipeline, erase_activity, eventually
from tests.integration.test_api_setup import deliver

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


async def test_resync_then_remove_with_purge(env: Env, api: Api, pipeline: Pipeline) -> None:
    jana = env.mail_user("jana")
    deliver(env, jana.address, 4)
    client, stranger = api.client("u-jana"), api.client("u-karel")
    imap = {"host": "127.0.0.1", "port": env.dovecot.imaps_port, "username": jana.address}
    created = await client.post(
        "/v1/accounts", json={"address": jana.address, "imap": imap, "password": jana.password}
    )
    account_id = created.json()["account_id"]

    async def state() -> dict[str, Any] | None:
        view = (await client.get(f"/v1/accounts/{account_id}")).json()
        return cast("dict[str, Any] | None", view.get("state"))

    async def synced(n: int) -> Any:
        s = await state()
        return s if s and s["status"] == "idle" and s["done"] == n else None

    async with env.mongo() as db, pipeline():
        first = await eventually(lambda: synced(4), timeout=90, what="first import")
        await eventually(lambda: _count(db, account_id, 4), timeout=60, what="four activities")
        assert (await stranger.post(f"/v1/accounts/{account_id}/resync")).status_code == 403
        # Erased on request: it stays erased until the resync below asks for it again.
        erased = await db.activities.find_one({"account_ids": account_id})
        await erase_activity(env, erased["_id"])
        assert await db.activities.count_documents({"account_ids": account_id}) == 3
        assert await db.tombstones.count_documents({"account_id": account_id}) == 1

        resync = await client.post(f"/v1/accounts/{account_id}/resync")
        assert resync.status_code == 200, resync.text
        again = await eventually(lambda: synced(4), timeout=90, what="imported again")
        assert again["since"] > first["since"]
        cursors = await db.folder_cursors.find({"account_id": account_id}).to_list(None)
        assert [c["last_uid"] for c in cursors] == [4]
        # Re-imported messages land on the same activities and sightings (the cursor
        # moves when the fetcher has published; the writer follows).
        await eventually(lambda: _count(db, account_id, 4), timeout=60, what="the erased one back")
        docs = await db.activities.find({"account_ids": account_id}).to_list(None)
        assert len(docs) == 4 and all(len(d["sightings"]) == 1 for d in docs)
        assert await db.tombstones.count_documents({"account_id": account_id}) == 0

        removed = await client.delete(f"/v1/accounts/{account_id}", params={"purge": "true"})
        assert removed.json() == {
            "account_id": account_id,
            "activities_deleted": 4,
            "activities_kept_for_other_accounts": 0,
        }
        assert await db.activities.count_documents({"account_ids": account_id}) == 0
        assert await db.tombstones.count_documents({}) == 0  # they go with the account
        assert (await client.get(f"/v1/accounts/{account_id}")).status_code == 403
        assert (await api.client("root").get(f"/v1/accounts/{account_id}")).status_code == 404
        assert (await client.get("/v1/mailboxes")).json() == []
    records = await read_topic(env.overrides["kafka_bootstrap"], env.settings.topic(ACCOUNTS))
    assert [r.value for r in records if r.key == account_id.encode()][-1] is None


async def _count(db: Any, account_id: str, n: int) -> bool:
    return bool(await db.activities.count_documents({"account_ids": account_id}) == n)
