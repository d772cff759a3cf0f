"""The OAuth2 sign-in's I/O: start (a pending sign-in in MongoDB, the authorization URL)
and complete (the callback: exchange the code, find the mailbox, log in, save).

Nothing is saved until every check passed: the pending sign-in is taken (deleted) first,
so a ``state`` works once; the account record is written only after the IMAP (and SMTP)
login with the new access token succeeded. The decisions live in :mod:`.oauth2_flow`.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from urllib.parse import quote_plus

import httpx
from pydantic import TypeAdapter

from schemas.account import (
    AccountRecord,
    Endpoint,
    OAuth2Mechanism,
    OAuth2Secret,
    PersonalOwnership,
)
from services.api.account_management import NOT_VISIBLE, Accounts, missing_folders, new_account_id
from services.api.callers import Caller
from services.api.errors import (
    AccessDenied,
    AddressUnknown,
    Conflict,
    Forbidden,
    InvalidRequest,
    InvalidState,
    ProviderError,
    ProviderNotConfigured,
    TokenExchangeFailed,
    VerificationFailed,
)
from services.api.models import AccountView
from services.api.oauth2_flow import (
    CodeGrant,
    ExchangeFailed,
    Provider,
    ProviderId,
    authorization_url,
    check_endpoint,
    code_form,
    expired,
    id_token_claims,
    mailbox_address,
    new_state,
    parse_code_response,
    pkce_challenge,
    pkce_verifier,
    state_key,
    usernames,
)
from services.api.oauth2_models import (
    OAuth2AccountInput,
    OAuth2Connected,
    OAuth2Started,
    OAuth2StartInput,
    PendingSignIn,
    ServerInput,
)
from services.api.permissions import may_manage, may_own
from services.api.presets import PRESETS, ServerPreset
from services.api.resources import Resources
from services.api.verify import verify_imap, verify_smtp
from services.api.verify_errors import FailureCode, VerifyFailure
from services.common.oauth2 import AccessToken

log = logging.getLogger("mailsync.api.oauth2")

PENDING = "oauth2_pending"
_TIME = TypeAdapter(dt.datetime)  # pending sign-ins are stored as JSON: times as text


class OAuth2SignIn:
    def __init__(self, res: Resources):
        self._res = res
        self._pending = res.db[PENDING]
        self._accounts = Accounts(res)

    def _provider(self, provider_id: ProviderId) -> Provider:
        found = self._res.settings.oauth2_providers().get(provider_id)
        if found is None:
            raise ProviderNotConfigured(
                f"no OAuth2 client is configured for {provider_id}: set "
                f"MAILSYNC_OAUTH2_{provider_id.upper()}_CLIENT_ID (and its secret)"
            )
        return found

    # -- start ---------------------------------------------------------------------------
    async def start(
        self, caller: Caller, body: OAuth2StartInput, redirect_uri: str
    ) -> OAuth2Started:
        """The authorization URL for ``caller``'s sign-in, remembered until it expires."""
        provider = self._provider(body.provider)
        if body.account_id is not None:
            current = await self._accounts.find(caller, body.account_id)
            if not may_manage(caller, current):
                raise Forbidden("only an admin or the account's owner may sign it in again")
            account_id = current.account_id
            hint: str | None = body.login_hint or current.address
        else:
            assert body.account is not None
            settings = body.account
            if settings.account_id is not None and not caller.admin:
                raise Forbidden("only admins choose account ids")
            if settings.ownership is not None and not may_own(caller, settings.ownership):
                raise Forbidden("you may create personal accounts of your own only")
            _servers(provider, settings)  # fails now rather than after the sign-in
            account_id = settings.account_id or new_account_id()
            if await self._res.store.get(account_id) is not None:
                raise Conflict(f"account {account_id!r} exists: sign it in again by its id")
            hint = body.login_hint or settings.address
        now = _now()
        state, verifier = new_state(), pkce_verifier()
        pending = PendingSignIn(
            id=state_key(state),
            provider=provider.id,
            caller=caller,
            account_id=account_id,
            reauthorise=body.account_id is not None,
            settings=body.account,
            verifier_ciphertext=self._res.box.encrypt(verifier),
            redirect_uri=redirect_uri,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=self._res.settings.oauth2_state_ttl_s),
        )
        # Sign-ins never completed: gone once expired (same-format UTC text sorts by time).
        await self._pending.delete_many(
            {"expires_at": {"$lt": _TIME.dump_python(now, mode="json")}}
        )
        await self._pending.insert_one(pending.model_dump(mode="json", by_alias=True))
        log.info("%s: %s sign-in started by %s", account_id, provider.id, caller.user_id)
        return OAuth2Started(
            authorization_url=authorization_url(
                provider,
                redirect_uri=redirect_uri,
                state=state,
                challenge=pkce_challenge(verifier),
                login_hint=hint,
            ),
            redirect_uri=redirect_uri,
            account_id=account_id,
            expires_at=pending.expires_at,
        )

    # -- the callback ----------------------------------------------------------------------
    async def complete(self, params: dict[str, str]) -> OAuth2Connected:
        """Finish the sign-in the callback's query ``params`` answer (RFC 6749 4.1.2)."""
        state = params.get("state")
        if not state:
            raise InvalidState("the callback has no state: start the sign-in again")
        doc = await self._pending.find_one_and_delete({"_id": state_key(state)})
        if doc is None:
            raise InvalidState("this sign-in is unknown or was used already: start it again")
        pending = PendingSignIn.model_validate(doc)
        if expired(pending.expires_at, _now()):
            raise InvalidState("this sign-in expired: start it again")
        error = params.get("error")
        if error == "access_denied":
            raise AccessDenied("access was refused at the sign-in: nothing was connected")
        if error:
            detail = params.get("error_description", "")[:300]
            raise ProviderError(
                f"the provider answered {error}" + (f": {detail}" if detail else "")
            )
        code = params.get("code")
        if not code:
            raise InvalidState("the callback has neither a code nor an error")
        provider = self._provider(pending.provider)
        grant = await self._exchange(provider, pending, code)
        signed_in = await self._address(provider, grant)
        if pending.reauthorise:
            record = await self._reauthorised(pending, provider, grant)
            signed_in = signed_in or record.imap.username
        else:
            if signed_in is None and (pending.settings is None or not pending.settings.address):
                raise AddressUnknown(
                    "the provider did not say which mailbox this is: give its address"
                )
            record = self._new_record(pending, provider, grant, signed_in or "")
            if await self._res.store.get(record.account_id) is not None:
                raise Conflict(f"account {record.account_id!r} was created meanwhile")
        await self._check_login(record, grant)
        await self._res.store.save(record)
        log.info(
            "%s: connected by OAuth2 (%s) as %s", record.account_id, provider.id, record.address
        )
        states = await self._accounts.states([record.account_id])
        return OAuth2Connected(
            account=AccountView.of(record, states.get(record.account_id)),
            signed_in_as=signed_in or record.address,
            reauthorised=pending.reauthorise,
        )

    async def _exchange(self, provider: Provider, pending: PendingSignIn, code: str) -> CodeGrant:
        verifier = self._res.box.decrypt(pending.verifier_ciphertext)
        secret = provider.client_secret.get_secret_value() if provider.client_secret else None
        form = code_form(
            code, verifier, pending.redirect_uri, provider.client_id, public=secret is None
        )
        headers = {"Accept": "application/json"}
        if secret is not None:
            # RFC 6749 section 2.3.1: id and secret form-urlencoded, then HTTP Basic.
            pair = f"{quote_plus(provider.client_id)}:{quote_plus(secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        try:
            check_endpoint(provider.token_url)
            async with self._http() as http:
                response = await http.post(provider.token_url, data=form, headers=headers)
            return parse_code_response(response.status_code, response.content, _now())
        except ExchangeFailed as exc:
            raise TokenExchangeFailed(str(exc), retriable=exc.retriable) from None
        except httpx.HTTPError as exc:
            raise TokenExchangeFailed(
                f"the token endpoint is unreachable: {type(exc).__name__}", retriable=True
            ) from None
        except Exception as exc:  # check_endpoint's refusal of a plain-http endpoint
            raise TokenExchangeFailed(str(exc), retriable=False) from None

    def _http(self) -> httpx.AsyncClient:
        # The system trust store; no redirects: a token endpoint that redirects a POST
        # carrying a code is misconfigured.
        return httpx.AsyncClient(
            timeout=self._res.settings.oauth2_timeout_s, follow_redirects=False
        )

    async def _address(self, provider: Provider, grant: CodeGrant) -> str | None:
        """The signed-in user's address: the ID token, else the userinfo endpoint."""
        if grant.id_token and (found := mailbox_address(id_token_claims(grant.id_token))):
            return found
        if provider.userinfo_url is None:
            return None
        try:
            check_endpoint(provider.userinfo_url)
            async with self._http() as http:
                response = await http.get(
                    provider.userinfo_url,
                    headers={"Authorization": f"Bearer {grant.access_token}"},
                )
            data = response.json() if response.status_code == 200 else {}
        except Exception as exc:  # no address is a clear error later, not a crash here
            log.warning("userinfo at %s failed: %r", provider.userinfo_url, exc)
            return None
        return mailbox_address(data) if isinstance(data, dict) else None

    def _secret(
        self, provider: Provider, grant: CodeGrant, mechanism: OAuth2Mechanism
    ) -> OAuth2Secret:
        """The grant as the account stores it: refresh token and client secret encrypted."""
        box = self._res.box
        client_secret = provider.client_secret
        return OAuth2Secret(
            token_url=provider.token_url,
            client_id=provider.client_id,
            client_secret_ciphertext=box.encrypt(client_secret.get_secret_value())
            if client_secret
            else None,
            refresh_token_ciphertext=box.encrypt(grant.refresh_token),
            scope=provider.refresh_scope,
            mechanism=mechanism,
        )

    def _new_record(
        self, pending: PendingSignIn, provider: Provider, grant: CodeGrant, signed_in: str
    ) -> AccountRecord:
        settings = pending.settings
        assert settings is not None
        names = usernames(settings.address, signed_in or (settings.address or ""))
        imap, smtp = _servers(provider, settings)
        return AccountRecord(
            account_id=pending.account_id,
            address=names.address,
            aliases=settings.aliases,
            display_name=settings.display_name,
            ownership=settings.ownership or PersonalOwnership(owner=pending.caller.user_id),
            imap=_endpoint(imap, names.imap),
            smtp=_endpoint(smtp, names.smtp) if smtp else None,
            secret=self._secret(provider, grant, settings.mechanism),
            folders=settings.folders,
            sent_folder=settings.sent_folder,
            processed=settings.processed,
            import_window=settings.import_window,
            paused=settings.paused,
            retention_days=settings.retention_days,
            max_connections=settings.max_connections,
            updated_at=_now(),
        )

    async def _reauthorised(
        self, pending: PendingSignIn, provider: Provider, grant: CodeGrant
    ) -> AccountRecord:
        """The account as it is now, with the new grant: settings and cursors kept."""
        current = await self._res.store.get(pending.account_id)
        if current is None or not may_manage(pending.caller, current):
            raise Forbidden(NOT_VISIBLE)
        old = current.secret
        mechanism = old.mechanism if isinstance(old, OAuth2Secret) else OAuth2Mechanism.XOAUTH2
        secret = self._secret(provider, grant, mechanism)
        return current.model_copy(update={"secret": secret, "updated_at": _now()})

    async def _check_login(self, record: AccountRecord, grant: CodeGrant) -> None:
        """Log in to IMAP (and SMTP) with the new access token, as verifying does."""
        assert isinstance(record.secret, OAuth2Secret)
        token = AccessToken(grant.access_token, grant.expires_at, record.secret.mechanism)
        timeout, tls = self._res.settings.api_verify_timeout_s, self._res.tls
        try:
            preview = await verify_imap(record.imap, token, timeout=timeout, tls=tls)
            if record.smtp is not None:
                await verify_smtp(record.smtp, token, timeout=timeout, tls=tls)
        except VerificationFailed as exc:
            raise VerificationFailed(_token_refused(exc.failure)) from None
        missing = missing_folders(record, preview)
        if missing:
            raise InvalidRequest(f"folders not on the server: {', '.join(missing)}")


def _token_refused(failure: VerifyFailure) -> VerifyFailure:
    """A refused token is not "this provider needs OAuth2" (the text names XOAUTH2)."""
    if failure.code not in (FailureCode.OAUTH2, FailureCode.APP_PASSWORD, FailureCode.AUTH):
        return failure
    return failure.model_copy(
        update={
            "code": FailureCode.AUTH,
            "hint": "The mail server refused the signed-in user's token: sign in as the "
            "mailbox's user (or a member with Full Access to the shared mailbox), and check "
            "that IMAP (and SMTP AUTH) are enabled for the mailbox.",
        }
    )


def _servers(
    provider: Provider, settings: OAuth2AccountInput
) -> tuple[ServerInput | ServerPreset, ServerInput | ServerPreset | None]:
    """The IMAP and SMTP servers: given, or the provider's preset (pure)."""
    preset = PRESETS.get(provider.preset) if provider.preset else None
    imap = settings.imap or (preset.imap if preset else None)
    if imap is None:
        raise InvalidRequest(f"give the IMAP server: {provider.id} has no preset")
    smtp = (settings.smtp or (preset.smtp if preset else None)) if settings.send else None
    if settings.send and smtp is None:
        raise InvalidRequest(f"give the SMTP server (or send: false): {provider.id} has no preset")
    return imap, smtp


def _endpoint(server: ServerInput | ServerPreset, username: str) -> Endpoint:
    return Endpoint(host=server.host, port=server.port, security=server.security, username=username)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
