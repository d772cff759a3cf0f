"""Adding and changing accounts, and reading them back: what the HTTP API and the
``mailsync accounts`` CLI both call (the callers' rights are checked here, not in the
routes).

Step 1 (:meth:`Accounts.verify`) logs in and previews, saving nothing. Step 2
(:meth:`Accounts.create` / :meth:`Accounts.update`) logs in again with the password
it is given (or the saved one), checks the chosen folders exist, encrypts the secret
and saves the record, which the fetchers apply without a restart.
"""

from __future__ import annotations

import datetime as dt
import secrets

from schemas.account import (
    AccountRecord,
    AccountSecret,
    EncryptedSecret,
    Endpoint,
    PersonalOwnership,
)
from schemas.mailbox_state import AccountState
from services.api.account_states import live_states
from services.api.callers import Caller
from services.api.errors import Conflict, Forbidden, InvalidRequest, NotFound
from services.api.models import (
    AccountInput,
    AccountView,
    EndpointInput,
    ImapPreview,
    MailboxView,
    PasswordInput,
    StateView,
    VerifyRequest,
    VerifyResult,
)
from services.api.pagination import page_after
from services.api.permissions import may_manage, may_own, may_see
from services.api.presets import Preset, UnknownPreset, get_preset, resolve_endpoint
from services.api.resources import Resources
from services.api.verify import verify_imap, verify_smtp

NOT_VISIBLE = "no such account, or not one you may see"


def new_account_id() -> str:
    return f"acc-{secrets.token_hex(6)}"


def record_from_input(
    data: AccountInput,
    *,
    account_id: str,
    owner: Caller,
    secret: AccountSecret | None,
    now: dt.datetime,
) -> AccountRecord:
    """The record ``data`` describes (pure); ownership defaults to the caller's own."""
    return AccountRecord(
        account_id=account_id,
        address=data.address,
        aliases=data.aliases,
        display_name=data.display_name,
        ownership=data.ownership or PersonalOwnership(owner=owner.user_id),
        imap=data.imap,
        smtp=data.smtp,
        secret=secret,
        folders=data.folders,
        sent_folder=data.sent_folder,
        processed=data.processed,
        import_window=data.import_window,
        paused=data.paused,
        retention_days=data.retention_days,
        max_connections=data.max_connections,
        updated_at=now,
    )


def missing_folders(record: AccountRecord, preview: ImapPreview) -> list[str]:
    """Folders the record names that the server does not have (pure)."""
    have = {f.name for f in preview.folders if f.selectable}
    wanted = [*record.folders, *([record.sent_folder] if record.sent_folder else [])]
    if record.processed.kind == "move":
        wanted.append(record.processed.folder)
    return [f for f in dict.fromkeys(wanted) if f not in have]


def mailbox_view(r: AccountRecord, state: AccountState | None) -> MailboxView:
    """One row of the CRM's "Email mailboxes" list (pure)."""
    own = r.ownership
    return MailboxView(
        account_id=r.account_id,
        address=r.address,
        aliases=r.aliases,
        display_name=r.display_name,
        kind=own.kind,
        group=own.group if own.kind == "shared" else None,
        credentials=r.secret.kind if r.secret else None,
        can_send=r.smtp is not None and not r.pending_credentials,
        paused=r.paused,
        state=StateView.of(state) if state else None,
    )


def _account_id(record: AccountRecord) -> str:
    return record.account_id


class Accounts:
    def __init__(self, res: Resources):
        self._res = res
        self._timeout = res.settings.api_verify_timeout_s
        self._tls = res.tls

    # -- step 1 --------------------------------------------------------------------------
    async def verify(self, req: VerifyRequest) -> VerifyResult:
        try:
            preset = get_preset(req.preset)
        except UnknownPreset as exc:
            raise InvalidRequest(str(exc)) from None
        password = req.password.get_secret_value()
        imap_ep = _endpoint(req.imap, preset, "imap")
        imap = await verify_imap(
            imap_ep, password, timeout=self._timeout, tls=self._tls, preset=preset
        )
        smtp = None
        if req.smtp is not None:
            smtp_ep = _endpoint(req.smtp, preset, "smtp")
            smtp = await verify_smtp(
                smtp_ep, password, timeout=self._timeout, tls=self._tls, preset=preset
            )
        return VerifyResult(imap=imap, smtp=smtp)

    async def check_login(self, record: AccountRecord, password: str) -> None:
        """Log in with the record's endpoints; its folders must exist on the server."""
        imap = await verify_imap(record.imap, password, timeout=self._timeout, tls=self._tls)
        missing = missing_folders(record, imap)
        if missing:
            raise InvalidRequest(f"folders not on the server: {', '.join(missing)}")
        if record.smtp is not None:
            await verify_smtp(record.smtp, password, timeout=self._timeout, tls=self._tls)

    # -- reading -------------------------------------------------------------------------
    async def find(self, caller: Caller, account_id: str) -> AccountRecord:
        """The account, if ``caller`` may see it; a non-admin cannot tell "absent" from
        "not yours"."""
        record = await self._res.store.get(account_id)
        if record is not None and may_see(caller, record):
            return record
        if caller.admin:
            raise NotFound(f"no account {account_id!r}")
        raise Forbidden(NOT_VISIBLE)

    async def visible(self, caller: Caller) -> list[AccountRecord]:
        return [r for r in await self._res.store.all() if may_see(caller, r)]

    async def states(self, account_ids: list[str]) -> dict[str, AccountState]:
        return await live_states(self._res.db, account_ids)

    async def view(self, caller: Caller, account_id: str) -> AccountView:
        record = await self.find(caller, account_id)
        return AccountView.of(record, (await self.states([account_id])).get(account_id))

    async def views(self, caller: Caller) -> list[AccountView]:
        records = await self.visible(caller)
        states = await self.states([r.account_id for r in records])
        return [AccountView.of(r, states.get(r.account_id)) for r in records]

    async def _page(
        self, caller: Caller, after: str | None, limit: int
    ) -> tuple[list[AccountRecord], dict[str, AccountState], str | None]:
        """A page of the visible accounts by id, their states, and the id the next page
        starts after. Visibility is decided here, not by MongoDB, so the page is cut
        from the visible ones (a few thousand records at most); only its states are read."""
        records, last = page_after(await self.visible(caller), _account_id, after, limit)
        states = await self.states([r.account_id for r in records])
        return records, states, (last.account_id if last else None)

    async def view_page(
        self, caller: Caller, after: str | None, limit: int
    ) -> tuple[list[AccountView], str | None]:
        records, states, last = await self._page(caller, after, limit)
        return [AccountView.of(r, states.get(r.account_id)) for r in records], last

    async def mailboxes(self, caller: Caller) -> list[MailboxView]:
        records = await self.visible(caller)
        states = await self.states([r.account_id for r in records])
        return [mailbox_view(r, states.get(r.account_id)) for r in records]

    async def mailbox_page(
        self, caller: Caller, after: str | None, limit: int
    ) -> tuple[list[MailboxView], str | None]:
        records, states, last = await self._page(caller, after, limit)
        return [mailbox_view(r, states.get(r.account_id)) for r in records], last

    # -- step 2 --------------------------------------------------------------------------
    async def create(self, caller: Caller, data: AccountInput) -> AccountView:
        if data.account_id is not None and not caller.admin:
            raise Forbidden("only admins choose account ids")
        account_id = data.account_id or new_account_id()
        if data.ownership is not None and not may_own(caller, data.ownership):
            raise Forbidden("you may create personal accounts of your own only")
        if await self._res.store.get(account_id) is not None:
            raise Conflict(f"account {account_id!r} exists: change it with PUT")
        record = await self._prepared(caller, data, account_id, None)
        await self._res.store.save(record)
        return AccountView.of(record, None)

    async def update(self, caller: Caller, account_id: str, data: AccountInput) -> AccountView:
        current = await self.find(caller, account_id)
        if not may_manage(caller, current):
            raise Forbidden("only an admin or the account's owner may change it")
        if data.account_id not in (None, account_id):
            raise InvalidRequest("the account id cannot be changed")
        ownership = data.ownership or current.ownership
        if not may_own(caller, ownership):
            raise Forbidden("you may not give the account to someone else")
        data = data.model_copy(update={"ownership": ownership})
        record = await self._prepared(caller, data, account_id, current.secret)
        await self._res.store.save(record)
        states = await self.states([account_id])
        return AccountView.of(record, states.get(account_id))

    async def _prepared(
        self,
        caller: Caller,
        data: AccountInput,
        account_id: str,
        current: AccountSecret | None,
    ) -> AccountRecord:
        secret, password = current, None
        if data.password is not None:
            password = data.password.get_secret_value()
            secret = EncryptedSecret(ciphertext=self._res.box.encrypt(password))
        elif isinstance(current, EncryptedSecret) and data.verify:
            # (An OAuth2 grant is checked by the fetcher's first login, not here.)
            password = self._res.box.decrypt(current.ciphertext)
        record = record_from_input(
            data, account_id=account_id, owner=caller, secret=secret, now=_now()
        )
        if password is not None and data.verify:
            await self.check_login(record, password)
        return record

    async def set_password(
        self, caller: Caller, account_id: str, data: PasswordInput
    ) -> AccountView:
        """Supply (or change) the password: the owner completes a pending account here."""
        current = await self.find(caller, account_id)
        if not may_manage(caller, current):
            raise Forbidden("only an admin or the account's owner may set its password")
        password = data.password.get_secret_value()
        record = current.model_copy(
            update={
                "secret": EncryptedSecret(ciphertext=self._res.box.encrypt(password)),
                "updated_at": _now(),
            }
        )
        if data.verify:
            await self.check_login(record, password)
        await self._res.store.save(record)
        states = await self.states([account_id])
        return AccountView.of(record, states.get(account_id))


def _endpoint(given: EndpointInput, preset: Preset | None, which: str) -> Endpoint:
    try:
        return resolve_endpoint(
            getattr(preset, which) if preset else None,
            username=given.username,
            host=given.host,
            port=given.port,
            security=given.security,
        )
    except ValueError as exc:
        raise InvalidRequest(f"{which}: {exc}") from None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
