"""Callers over HTTP: who sees and sends through which mailbox, and an account an admin
creates without its password that its owner completes."""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

import pytest

from devservers.corpus import build
from schemas.topics import SEND_REQUESTS
from services.topic_reader import read_topic
from tests.fixtures.api import Api
from tests.fixtures.pipeline import Env, Pipeline, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def imap(env: Env, username: str) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": env.dovecot.imaps_port, "username": username}


async def test_owner_completes_account_and_each_caller_sees_only_theirs(
    env: Env, api: Api, pipeline: Pipeline
) -> None:
    jana, info = env.mail_user("jana"), env.mail_user("info")
    suffix = env.overrides["mongo_database"]
    admin, as_jana = api.client("root"), api.client("u-jana")
    as_karel, as_eve = api.client("u-karel"), api.client("u-eve")

    # An admin creates Jana's personal account without its password...
    created = await admin.post(
        "/v1/accounts",
        json={
            "account_id": f"jana-{suffix}",
            "address": jana.address,
            "ownership": {"kind": "personal", "owner": "u-jana"},
            "imap": imap(env, jana.address),
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["pending_credentials"] is True
    # ...and the shared info@ mailbox of the sales group, with SMTP and an alias.
    shared = await admin.post(
        "/v1/accounts",
        json={
            "account_id": f"info-{suffix}",
            "address": info.address,
            "aliases": [f"orders-{suffix}@example.com"],
            "ownership": {"kind": "shared", "group": "sales"},
            "imap": imap(env, info.address),
            "smtp": {
                "host": "127.0.0.1",
                "port": env.smtp.port,
                "security": "starttls",
                "username": info.address,
            },
            "password": info.password,
        },
    )
    assert shared.status_code == 201, shared.text
    jana_id, info_id = f"jana-{suffix}", f"info-{suffix}"

    mail = build(
        random.Random(5),
        ("Emily Carter", "emily.carter@northwind.example"),
        [("Jana", jana.address), ("Info", info.address)],
        date=dt.datetime(2026, 6, 1, 9, tzinfo=dt.UTC),
    )
    env.dovecot.deliver(jana.address, mail.message)
    env.dovecot.deliver(info.address, mail.message)

    # Nobody without a valid token learns anything.
    anonymous = await api.client(None).get(f"/v1/accounts/{jana_id}")
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    forged = await api.client(None).get(
        "/v1/mailboxes", headers={"Authorization": "Bearer tok-jana-0123456789abcdeX"}
    )
    assert forged.status_code == 401

    async with pipeline():

        async def jana_status(status: str) -> Any:
            boxes = (await as_jana.get("/v1/mailboxes")).json()
            ok = [b for b in boxes if b["state"] and b["state"]["status"] == status]
            return boxes if ok else None

        boxes = await eventually(
            lambda: jana_status("pending_credentials"), timeout=60, what="pending state"
        )
        assert [b["account_id"] for b in boxes] == [jana_id]

        # Only the owner (or an admin) completes it; a stranger cannot tell it exists.
        put = {"password": jana.password}
        other = await as_karel.put(f"/v1/accounts/{jana_id}/password", json=put)
        absent = await as_karel.put("/v1/accounts/no-such-account/password", json=put)
        assert other.status_code == absent.status_code == 403
        # The same problem but for ``instance``, the path each asked for.
        assert {**other.json(), "instance": ""} == {**absent.json(), "instance": ""}
        wrong = await as_jana.put(f"/v1/accounts/{jana_id}/password", json={"password": "x"})
        assert wrong.json()["failure"]["code"] == "auth_failed"
        done = await as_jana.put(f"/v1/accounts/{jana_id}/password", json=put)
        assert done.status_code == 200 and done.json()["credentials"] == "password"
        await eventually(lambda: jana_status("idle"), timeout=60, what="Jana's account synced")

        async def both_sightings() -> Any:
            found = (await admin.get("/v1/activities")).json()
            return found if found and len(found[0]["sightings"]) == 2 else None

        [activity] = await eventually(both_sightings, timeout=60, what="one activity, 2 mailboxes")

        seen_by_jana = (await as_jana.get("/v1/activities")).json()
        seen_by_karel = (await as_karel.get("/v1/activities")).json()
        assert [[s["account_id"] for s in a["sightings"]] for a in seen_by_jana] == [[jana_id]]
        assert [[s["account_id"] for s in a["sightings"]] for a in seen_by_karel] == [[info_id]]
        assert seen_by_jana[0]["account_ids"] == [jana_id]
        assert (await as_eve.get("/v1/activities")).json() == []
        assert (await as_eve.get(f"/v1/activities/{activity['_id']}")).status_code == 404
        karel_filter = await as_karel.get("/v1/activities", params={"account_id": jana_id})
        assert karel_filter.json() == []
        by_participant = await as_karel.get(
            "/v1/activities", params={"participant": "EMILY.CARTER@northwind.example"}
        )
        assert [a["_id"] for a in by_participant.json()] == [activity["_id"]]

    # Mailboxes: Karel has the shared one (with its alias), Eve none.
    karel_boxes = (await as_karel.get("/v1/mailboxes")).json()
    assert [(b["account_id"], b["kind"], b["group"]) for b in karel_boxes] == [
        (info_id, "shared", "sales")
    ]
    assert karel_boxes[0]["aliases"] == [f"orders-{suffix}@example.com"]
    assert (await as_eve.get("/v1/mailboxes")).json() == []
    assert (await as_eve.get(f"/v1/accounts/{info_id}")).status_code == 403

    # Sending: through the shared mailbox of his group (from its alias), not Jana's.
    blob = await as_karel.post("/v1/blobs", content=b"%PDF-1.4 offer")
    assert blob.status_code == 201
    message = {
        "to": [{"address": "emily.carter@northwind.example"}],
        "subject": "Re: offer",
        "text_body": "Dear Emily, the offer is attached.",
        "attachments": [{"filename": "offer.pdf", "blob": blob.json()}],
    }
    via_jana = await as_karel.post("/v1/send", json={"account_id": jana_id, **message})
    assert via_jana.status_code == 403
    bogus_sender = await as_karel.post(
        "/v1/send",
        json={"account_id": info_id, "sender": {"address": "ceo@example.com"}, **message},
    )
    assert bogus_sender.status_code == 422
    no_smtp = await as_jana.post("/v1/send", json={"account_id": jana_id, **message})
    assert no_smtp.status_code == 409
    accepted = await as_karel.post(
        "/v1/send",
        json={
            "account_id": info_id,
            "sender": {"name": "Orders", "address": f"orders-{suffix}@example.com"},
            "in_reply_to_activity": activity["_id"],
            **message,
        },
    )
    assert accepted.status_code == 202, accepted.text
    topic = env.settings.topic(SEND_REQUESTS)
    records = await read_topic(env.overrides["kafka_bootstrap"], topic)
    assert [r.key for r in records] == [info_id.encode()]
    request = json.loads(records[0].value or b"{}")
    assert request["request_id"] == accepted.json()["request_id"]
    assert (request["requested_by"], request["groups"]) == ("u-karel", ["sales"])
    assert request["sender"]["address"] == f"orders-{suffix}@example.com"
    assert request["attachments"][0]["blob"] == blob.json()
