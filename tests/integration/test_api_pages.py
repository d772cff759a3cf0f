"""The lists a page at a time: ``limit``, and the ``Link: <...>; rel="next"`` and
``Next-Cursor`` headers a client follows until the last page, which has neither; every
item once, in order, whatever the page size. A cursor this API did not hand out is a
400 problem."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import httpx
import pytest

from tests.fixtures.api import Api
from tests.fixtures.pipeline import Env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

NEXT = re.compile(r'^<(/[^>]*)>; rel="next"$')


async def every_page(client: httpx.AsyncClient, url: str, **params: Any) -> list[list[Any]]:
    """Each page's items, following ``Link`` as a client would (checking Next-Cursor)."""
    pages = []
    response = await client.get(url, params=params)
    while True:
        assert response.status_code == 200, response.text
        pages.append(response.json())
        link = response.headers.get("link")
        if link is None:
            assert "next-cursor" not in response.headers
            return pages
        found = NEXT.match(link)
        assert found, link
        assert f"cursor={response.headers['next-cursor']}" in found[1]
        response = await client.get(found[1])


def activity(n: int, account: str, date: dt.datetime | None) -> dict[str, Any]:
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    return {
        "schema_version": 1,
        "_id": f"act-{n:02}",
        "fingerprint": f"fp-{n}",
        "message_id": f"<{n}@example.com>",
        "subject": f"message {n}",
        "from": {"name": "", "address": "bo@example.com"},
        "to": [{"name": "", "address": "jana@example.com"}],
        "cc": [],
        "date": date,
        "direction": "inbound",
        "snippet": "",
        "thread_id": f"t{n}",
        "account_ids": [account],
        "sightings": [
            {
                "account_id": account,
                "folder": "INBOX",
                "uidvalidity": 1,
                "uid": n,
                "folder_role": "inbox",
                "duplicate": False,
            }
        ],
        "created_at": now,
        "updated_at": now,
    }


async def test_lists_page_by_cursor_and_keep_every_item_once(env: Env, api: Api) -> None:
    admin = api.client("root")
    imap = {"host": "127.0.0.1", "port": env.dovecot.imaps_port, "username": "x@example.com"}
    ids = [f"acc-page-{n}" for n in (4, 1, 5, 3, 2)]
    for account_id in ids:
        created = await admin.post(
            "/v1/accounts",
            json={"account_id": account_id, "address": f"{account_id}@example.com", "imap": imap},
        )
        assert created.status_code == 201, created.text

    for url in ("/v1/accounts", "/v1/mailboxes"):
        pages = await every_page(admin, url, limit=2)
        assert [len(p) for p in pages] == [2, 2, 1]
        assert [a["account_id"] for p in pages for a in p] == sorted(ids)
        assert [a["account_id"] for p in await every_page(admin, url) for a in p] == sorted(ids)
    # The default page holds them all: no Link, as before pagination.
    whole = await admin.get("/v1/accounts")
    assert len(whole.json()) == 5 and "link" not in whole.headers

    # Activities: newest first, the same date ordered by id (descending), no date last.
    day = dt.datetime(2026, 5, 1, 9, tzinfo=dt.UTC)
    dates = [day, day, day + dt.timedelta(hours=1), None, day - dt.timedelta(days=1), None, day]
    docs = [activity(n, ids[n % 2], d) for n, d in enumerate(dates)]
    async with env.mongo() as db:
        await db["activities"].insert_many(docs)
    newest_first = ["act-02", "act-06", "act-01", "act-00", "act-04", "act-05", "act-03"]
    for limit in (1, 2, 3, 7, 100):
        pages = await every_page(admin, "/v1/activities", limit=limit)
        assert [a["_id"] for p in pages for a in p] == newest_first, limit
        assert all(len(p) == limit for p in pages[:-1])
    # The filters go along with the cursor.
    mine = await every_page(admin, "/v1/activities", limit=1, account_id=ids[1])
    assert [a["_id"] for p in mine for a in p] == ["act-01", "act-05", "act-03"]

    first = await admin.get("/v1/activities", params={"limit": 2})
    for bad in ("not-a-cursor", first.headers["next-cursor"] + "x"):
        refused = await admin.get("/v1/activities", params={"cursor": bad})
        assert refused.status_code == 400
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "invalid_cursor"
    # A cursor of another list is refused too.
    accounts_cursor = (await admin.get("/v1/accounts", params={"limit": 1})).headers["next-cursor"]
    wrong_list = await admin.get("/v1/activities", params={"cursor": accounts_cursor})
    assert wrong_list.status_code == 400 and "activities" in wrong_list.json()["detail"]
