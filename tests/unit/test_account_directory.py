"""The account directory hands out its own copy of an equal account record."""

from __future__ import annotations

import datetime as dt
from typing import cast

from aiokafka import AIOKafkaConsumer

from schemas.account import AccountRecord, Endpoint, PersonalOwnership, Security
from services.common.accounts_table import AccountDirectory


def _record(**fields: object) -> AccountRecord:
    values: dict[str, object] = {
        "account_id": "jana",
        "address": "jana@firma.example",
        "ownership": PersonalOwnership(owner="u-jana"),
        "imap": Endpoint(host="127.0.0.1", port=993, security=Security.TLS, username="jana"),
        "updated_at": dt.datetime(2026, 12, 5, tzinfo=dt.UTC),
    }
    values.update(fields)
    return AccountRecord.model_validate(values)


def test_an_equal_record_is_the_directory_s_object_and_a_changed_one_is_not() -> None:
    directory = AccountDirectory(cast(AIOKafkaConsumer, None), "accounts")
    held = _record()
    directory._apply(b"jana", held.model_dump_json().encode())
    mine = directory.get("jana")
    assert mine is not None

    same = AccountRecord.model_validate_json(held.model_dump_json())
    assert same is not mine and directory.shared(same) is mine  # one copy kept

    renamed = _record(display_name="Jana N.")
    assert directory.shared(renamed) is renamed  # newer than the directory: its own
    stranger = _record(account_id="petr")
    assert directory.shared(stranger) is stranger
