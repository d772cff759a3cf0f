"""The sender's pure decisions: who may send, which SMTP failures are retried, where Sent is."""

from __future__ import annotations

import datetime as dt

import pytest

from schemas.account import (
    AccountRecord,
    EncryptedSecret,
    Endpoint,
    PersonalOwnership,
    SharedOwnership,
)
from schemas.common import Address, FolderRole
from schemas.send_request import Resolution, SendRequest
from services.api.callers import Caller, Role
from services.api.permissions import may_resolve
from services.imap.folders import Folder
from services.sender.authorize import refusal
from services.sender.resolve import resolution_update, still_unknown
from services.sender.reuse import Limits, Used, keep_open
from services.sender.sent_folder import sent_folder
from services.sender.smtp_failure import classify_network_failure, classify_smtp_reply, worst

NOW = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)


def account(ownership: PersonalOwnership | SharedOwnership, **fields: object) -> AccountRecord:
    values: dict[str, object] = {
        "account_id": "acc",
        "address": "info@example.com",
        "aliases": ("orders@example.com",),
        "ownership": ownership,
        "imap": Endpoint(host="imap.example.com", port=993, username="info"),
        "smtp": Endpoint(host="smtp.example.com", port=465, username="info"),
        "secret": EncryptedSecret(ciphertext="x"),
        "updated_at": NOW,
    }
    values.update(fields)
    return AccountRecord.model_validate(values)


def req(
    user: str = "jana", groups: tuple[str, ...] = (), sender: str = "info@example.com"
) -> SendRequest:
    return SendRequest(
        request_id="req-12345678",
        account_id="acc",
        sender=Address(address=sender),
        requested_by=user,
        groups=groups,
        to=(Address(address="c@example.net"),),
        text_body="hi",
        requested_at=NOW,
    )


def test_owner_sends_through_their_personal_account_from_any_of_its_addresses() -> None:
    acc = account(PersonalOwnership(owner="jana"))
    assert refusal(req(), acc) is None
    assert refusal(req(sender="ORDERS@example.com"), acc) is None


def test_nobody_else_sends_through_a_personal_account_not_even_an_admin_group() -> None:
    acc = account(PersonalOwnership(owner="jana"))
    why = refusal(req(user="petr", groups=("admins", "sales")), acc)
    assert why is not None and "may not send through account 'acc'" in why


def test_group_members_send_through_the_shared_account() -> None:
    acc = account(SharedOwnership(group="sales"))
    assert refusal(req(user="petr", groups=("sales",)), acc) is None
    assert refusal(req(user="petr", groups=("support",)), acc) is not None


def test_a_missing_and_a_foreign_account_read_the_same() -> None:
    foreign = refusal(req(user="petr"), account(PersonalOwnership(owner="jana")))
    assert refusal(req(user="petr"), None) == foreign


def test_only_the_accounts_own_addresses_may_be_the_sender() -> None:
    why = refusal(req(sender="ceo@example.com"), account(PersonalOwnership(owner="jana")))
    assert why is not None and "not an address of account" in why


def test_no_smtp_or_no_secret_is_a_clear_refusal() -> None:
    own = PersonalOwnership(owner="jana")
    assert "no SMTP settings" in (refusal(req(), account(own, smtp=None)) or "")
    assert "pending credentials" in (refusal(req(), account(own, secret=None)) or "")


@pytest.mark.parametrize(
    ("code", "retriable"),
    [
        (421, True),
        (450, True),
        (451, True),
        (452, True),
        (503, True),
        (550, False),
        (551, False),
        (552, False),
        (553, False),
        (554, False),
        (535, False),
    ],
)
def test_smtp_replies(code: int, retriable: bool) -> None:
    verdict = classify_smtp_reply(code, "text", stage="RCPT TO")
    assert verdict.retriable is retriable
    assert str(code) in verdict.reason


def test_one_permanent_refusal_makes_the_send_permanent() -> None:
    soft = classify_smtp_reply(451, "greylisted", stage="RCPT TO")
    hard = classify_smtp_reply(550, "no such user <x@y>", stage="RCPT TO")
    assert worst([soft, soft]).retriable
    combined = worst([soft, hard])
    assert not combined.retriable and "no such user" in combined.reason


@pytest.mark.parametrize("stage", ["CONNECT", "AUTH", "MAIL FROM", "RCPT TO"])
def test_network_failure_before_data_is_transient_and_nothing_was_delivered(stage: str) -> None:
    verdict = classify_network_failure(ConnectionResetError("reset by peer"), stage=stage)
    assert verdict.retriable and not verdict.maybe_delivered
    assert "ConnectionResetError: reset by peer" in verdict.reason


def test_network_failure_during_data_may_have_delivered_the_message() -> None:
    verdict = classify_network_failure(TimeoutError(), stage="DATA")
    assert verdict.maybe_delivered and "during DATA" in verdict.reason
    # A negative reply to DATA is an answer: the server did not take the message.
    assert not classify_smtp_reply(451, "try later", stage="DATA").maybe_delivered


def folder(name: str, role: FolderRole, *flags: str) -> Folder:
    return Folder(name=name, wire_name=name, flags=frozenset(flags), role=role)


def test_sent_folder_by_role_in_any_language_or_as_configured() -> None:
    folders = [
        folder("INBOX", FolderRole.INBOX),
        folder("Odeslaná pošta", FolderRole.SENT, "\\sent"),
        folder("CRM/Odeslané", FolderRole.OTHER),
    ]
    assert sent_folder(folders, None) == folders[1]
    assert sent_folder(folders, "CRM/Odeslané") == folders[2]
    assert sent_folder(folders, "Gone") is None
    assert sent_folder(folders[:1], None) is None


LIMITS = Limits(max_uses=100, max_age_s=300)


def test_a_session_is_kept_while_more_of_the_account_is_in_hand() -> None:
    assert keep_open(Used(uses=3, age_s=2, broken=False), others_in_hand=5, limits=LIMITS)
    # The last request of a burst: nothing is left open behind it.
    assert not keep_open(Used(uses=3, age_s=2, broken=False), others_in_hand=0, limits=LIMITS)


def test_a_broken_worn_or_old_session_is_closed_even_mid_burst() -> None:
    assert not keep_open(Used(uses=3, age_s=2, broken=True), others_in_hand=5, limits=LIMITS)
    assert not keep_open(Used(uses=100, age_s=2, broken=False), others_in_hand=5, limits=LIMITS)
    assert not keep_open(Used(uses=3, age_s=300, broken=False), others_in_hand=5, limits=LIMITS)


def test_an_unknown_outcome_names_the_transcripts_last_step() -> None:
    verdict = classify_network_failure(ConnectionResetError("reset by peer"), stage="DATA")
    assert verdict.last_step is not None and verdict.last_step.startswith("DATA:")
    assert "no reply" in verdict.last_step and "reset by peer" in verdict.last_step
    # Before DATA nothing can have been delivered: no unknown outcome, no step to show.
    assert classify_network_failure(TimeoutError(), stage="RCPT TO").last_step is None


def test_resending_an_unknown_outcome_makes_it_due_as_never_sent() -> None:
    update = resolution_update(Resolution.RESEND, "karel", NOW)
    fields = update["$set"]
    assert fields["state"] == "accepted" and fields["resolution"] == "resend"
    assert fields["next_attempt_at"] == NOW and fields["lease_until"] is None
    assert fields["attempts"] == 0 and fields["last_step"] is None
    assert "$addToSet" not in update  # nothing to announce until it is sent again
    assert still_unknown("req-1") == {"_id": "req-1", "state": "unknown"}


def test_marking_an_unknown_outcome_sent_announces_it_and_files_it() -> None:
    update = resolution_update(Resolution.MARK_SENT, "karel", NOW)
    fields = update["$set"]
    assert fields["state"] == "sent" and fields["resolution"] == "mark_sent"
    assert fields["next_attempt_at"] == NOW  # due: the sender files it in Sent now
    # The activity id comes from the message as built, set when it is filed.
    assert fields["activity_id"] is None and "karel" in fields["reason"]
    assert update["$addToSet"] == {"unpublished": "sent"}


def test_who_may_resolve_an_unknown_outcome_is_who_may_send_through_the_account() -> None:
    personal = account(PersonalOwnership(owner="jana"))
    shared = account(SharedOwnership(group="sales"))
    assert may_resolve(Caller(user_id="jana"), req(), personal)
    assert not may_resolve(Caller(user_id="root", role=Role.ADMIN), req(), personal)
    assert may_resolve(Caller(user_id="karel", groups=("sales",)), req(), shared)
    assert not may_resolve(Caller(user_id="eve", groups=("support",)), req(), shared)
    assert not may_resolve(Caller(user_id="jana"), req(), None)
