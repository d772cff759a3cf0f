"""The accounts API's pure decisions: presets, failure codes, tokens, permissions."""

from __future__ import annotations

import datetime as dt
import socket
import ssl

import aiosmtplib
import pytest
from pydantic import SecretStr

from schemas.account import (
    AccountRecord,
    Endpoint,
    MoveProcessed,
    PersonalOwnership,
    Security,
    SharedOwnership,
)
from schemas.common import FolderRole
from services.api.account_management import missing_folders, record_from_input
from services.api.callers import Caller, Role, TokenTable
from services.api.models import AccountInput, FolderPreview, ImapPreview
from services.api.permissions import may_manage, may_own, may_see, may_send_as
from services.api.presets import PRESETS, get_preset, preset_for_address, resolve_endpoint
from services.api.verify_errors import FailureCode, classify
from services.common.errors import ConfigurationError
from services.imap.errors import AuthenticationFailed, ImapUnavailable, InsecureConnection

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
IMAP = Endpoint(host="imap.example.com", port=993, username="jana@example.com")
JANA = Caller(user_id="u-jana")
KAREL = Caller(user_id="u-karel", groups=("sales",))
ROOT = Caller(user_id="root", role=Role.ADMIN)


def account(ownership: PersonalOwnership | SharedOwnership, **kw: object) -> AccountRecord:
    return AccountRecord(
        account_id="a1",
        address="info@example.com",
        aliases=("Orders@Example.com",),
        ownership=ownership,
        imap=IMAP,
        updated_at=NOW,
        **kw,
    )


def test_presets_fill_in_what_the_user_left_out() -> None:
    gmail = preset_for_address("Jana@GMAIL.com")
    assert gmail is not None and gmail.id == "gmail"
    assert preset_for_address("jana@example.com") is None
    ep = resolve_endpoint(
        gmail.imap, username="jana@gmail.com", host=None, port=None, security=None
    )
    assert (ep.host, ep.port, ep.security) == ("imap.gmail.com", 993, Security.TLS)
    own = resolve_endpoint(
        gmail.imap, username="u", host="mail.example.com", port=None, security=Security.STARTTLS
    )
    assert (own.host, own.port, own.security) == ("mail.example.com", 143, Security.STARTTLS)
    with pytest.raises(ValueError):
        resolve_endpoint(None, username="u", host=None, port=None, security=None)
    with pytest.raises(ValueError, match="gmail"):
        get_preset("nope")
    assert PRESETS["outlook"].auth == ("oauth2",)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (socket.gaierror(-2, "Name or service not known"), FailureCode.DNS),
        (ConnectionRefusedError(111, "refused"), FailureCode.REFUSED),
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), FailureCode.TLS),
        (ssl.SSLError(1, "wrong version number"), FailureCode.TLS),
        (TimeoutError(), FailureCode.TIMEOUT),
        (OSError(113, "No route to host"), FailureCode.UNREACHABLE),
        (AuthenticationFailed("[AUTHENTICATIONFAILED] Authentication failed."), FailureCode.AUTH),
        (InsecureConnection("plaintext"), FailureCode.INSECURE),
        (ImapUnavailable("server said BYE"), FailureCode.SERVER),
        (aiosmtplib.SMTPAuthenticationError(535, "5.7.8 invalid"), FailureCode.AUTH),
        (aiosmtplib.SMTPConnectTimeoutError("timed out"), FailureCode.TIMEOUT),
    ],
)
def test_each_failure_has_one_code(exc: BaseException, code: FailureCode) -> None:
    assert classify(exc, "imap").code is code


def test_the_cause_of_a_wrapped_failure_decides() -> None:
    wrapped = aiosmtplib.SMTPConnectError("Error connecting")
    wrapped.__cause__ = ConnectionRefusedError(111, "refused")
    assert classify(wrapped, "smtp").code is FailureCode.REFUSED


def test_provider_hints_for_app_passwords_and_oauth2() -> None:
    gmail = AuthenticationFailed(
        "IMAP login refused: [ALERT] Application-specific password required: "
        "https://support.google.com/accounts/answer/185833 (Failure)"
    )
    assert classify(gmail, "imap").code is FailureCode.APP_PASSWORD
    smtp_gmail = aiosmtplib.SMTPAuthenticationError(534, "5.7.9 Application-specific password")
    assert classify(smtp_gmail, "smtp").code is FailureCode.APP_PASSWORD
    microsoft = aiosmtplib.SMTPAuthenticationError(
        535, "5.7.139 Authentication unsuccessful, basic authentication is disabled."
    )
    assert classify(microsoft, "smtp").code is FailureCode.OAUTH2
    # Outlook says only "LOGIN failed.": the preset knows it takes OAuth2 only.
    outlook = classify(AuthenticationFailed("LOGIN failed."), "imap", PRESETS["outlook"])
    assert outlook.code is FailureCode.OAUTH2 and "OAuth2" in outlook.hint
    plain = classify(AuthenticationFailed("LOGIN failed."), "imap", PRESETS["seznam"])
    assert plain.code is FailureCode.AUTH and not plain.retriable


def test_tokens_map_to_callers_and_short_or_broken_tables_are_refused() -> None:
    table = TokenTable.from_json(
        '{"0123456789abcdef-jana": {"user_id": "u-jana", "groups": ["sales"]}}', "test"
    )
    found = table.lookup("0123456789abcdef-jana")
    assert found is not None and found.viewer.groups == frozenset({"sales"})
    assert not found.admin
    assert table.lookup("0123456789abcdef-jan") is None
    with pytest.raises(ConfigurationError, match="at least"):
        TokenTable.from_json('{"short": {"user_id": "x"}}', "test")
    with pytest.raises(ConfigurationError, match="MAILSYNC_API_TOKENS") as info:
        TokenTable.from_json('{"0123456789abcdef-x": {"role": "god"}}', "MAILSYNC_API_TOKENS")
    assert "0123456789abcdef-x" not in str(info.value)


def test_who_may_see_manage_and_send() -> None:
    personal = account(PersonalOwnership(owner="u-jana"))
    shared = account(SharedOwnership(group="sales"))
    assert may_see(JANA, personal) and not may_see(KAREL, personal) and may_see(ROOT, personal)
    assert may_see(KAREL, shared) and not may_see(JANA, shared)
    assert may_manage(JANA, personal) and not may_manage(KAREL, shared)
    assert may_manage(ROOT, shared)
    assert not may_own(JANA, PersonalOwnership(owner="u-karel"))
    assert not may_own(JANA, SharedOwnership(group="sales")) and may_own(ROOT, shared.ownership)
    assert may_send_as(shared, "orders@example.com") and may_send_as(shared, "INFO@example.com")
    assert not may_send_as(shared, "ceo@example.com")


def test_record_from_input_defaults_to_the_callers_own_and_keeps_no_clear_secret() -> None:
    data = AccountInput(address="jana@example.com", imap=IMAP, password=SecretStr("pw"))
    record = record_from_input(data, account_id="a1", owner=JANA, secret=None, now=NOW)
    assert record.ownership == PersonalOwnership(owner="u-jana")
    assert record.pending_credentials and "pw" not in record.model_dump_json()


def test_missing_folders_are_named() -> None:
    preview = ImapPreview(
        endpoint=IMAP,
        capabilities=(),
        folders=(
            FolderPreview(name="INBOX", role=FolderRole.INBOX, selectable=True),
            FolderPreview(name="Sent", role=FolderRole.SENT, selectable=True),
            FolderPreview(name="[Gmail]", role=FolderRole.OTHER, selectable=False),
        ),
        suggested_folders=("INBOX", "Sent"),
        sent_folder="Sent",
        total_messages=0,
        total_size=None,
    )
    record = account(
        PersonalOwnership(owner="u"),
        folders=("INBOX", "[Gmail]"),
        sent_folder="Sent",
        processed=MoveProcessed(folder="Done"),
    )
    assert missing_folders(record, preview) == ["[Gmail]", "Done"]
