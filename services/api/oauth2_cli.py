"""``mailsync accounts oauth2-start``: the OAuth2 sign-in for operators without a CRM.

It prints the authorization URL, serves the redirect URI itself on loopback (RFC 8252
section 7.3: a loopback redirect; register ``http://127.0.0.1:PORT/...`` with the
provider, Microsoft and Google accept it), completes the sign-in exactly as the API's
callback does, and prints the account.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from services.api.callers import Caller
from services.api.errors import ApiError, InvalidRequest
from services.api.models import AccountView
from services.api.oauth2_flow import ProviderId
from services.api.oauth2_models import OAuth2AccountInput, OAuth2Connected, OAuth2StartInput
from services.api.oauth2_pages import connected_page, failed_page
from services.api.oauth2_signin import OAuth2SignIn
from services.api.resources import Resources
from services.common.loopback import is_loopback

DEFAULT_REDIRECT = "http://127.0.0.1:8765/v1/accounts/oauth2/callback"


def add_parser(ops: Any) -> None:
    p = ops.add_parser(
        "oauth2-start", help="sign a mailbox in with OAuth2: print the URL, wait for the callback"
    )
    p.add_argument("--provider", required=True, choices=[x.value for x in ProviderId])
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--account",
        type=argparse.FileType(),
        metavar="FILE",
        help="a new account's settings as JSON (the `account` of POST /v1/accounts/oauth2/start)",
    )
    target.add_argument("--account-id", help="sign this existing account in again")
    p.add_argument("--login-hint", help="pre-fill the provider's sign-in")
    p.add_argument(
        "--redirect-uri",
        default=DEFAULT_REDIRECT,
        help=f"a loopback http URL registered with the provider (default {DEFAULT_REDIRECT})",
    )
    p.add_argument("--timeout", type=float, default=600, help="seconds to wait for the callback")


async def sign_in(args: argparse.Namespace, res: Resources, caller: Caller) -> AccountView:
    redirect = urlsplit(args.redirect_uri)
    if redirect.scheme != "http" or not redirect.hostname or not is_loopback(redirect.hostname):
        raise InvalidRequest("--redirect-uri must be http:// on a loopback address")
    flow = OAuth2SignIn(res)
    account = OAuth2AccountInput.model_validate_json(args.account.read()) if args.account else None
    body = OAuth2StartInput(
        provider=args.provider,
        account=account,
        account_id=args.account_id,
        login_hint=args.login_hint,
    )
    outcome: asyncio.Future[OAuth2Connected] = asyncio.get_running_loop().create_future()

    async def callback(request: web.Request) -> web.Response:
        if outcome.done():
            return web.Response(status=410, text="this sign-in is over")
        try:
            done = await flow.complete(dict(request.query))
        except ApiError as exc:
            outcome.set_exception(exc)
            return web.Response(status=exc.status, text=failed_page(exc), content_type="text/html")
        outcome.set_result(done)
        return web.Response(text=connected_page(done), content_type="text/html")

    app = web.Application()
    app.router.add_get(redirect.path or "/", callback)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, redirect.hostname, redirect.port or 80).start()
        started = await flow.start(caller, body, args.redirect_uri)
        print(
            f"Open this URL in a browser and sign in (waiting up to {args.timeout:.0f} s):\n"
            f"{started.authorization_url}",
            file=sys.stderr,
            flush=True,
        )
        done = await asyncio.wait_for(outcome, args.timeout)
    except TimeoutError:
        raise InvalidRequest("no sign-in arrived in time: start again") from None
    finally:
        await runner.cleanup()
    return done.account
