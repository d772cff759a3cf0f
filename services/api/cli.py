"""``mailsync accounts ...``: the account operations from a terminal, as an admin.

The same code the HTTP API runs (not HTTP): verify, save, list, show, set-password,
pause, resume, resync, remove, rotate-key, and oauth2-start (:mod:`.oauth2_cli`: prints
the sign-in URL and serves the callback itself). Passwords are read from the terminal
(without echo) or, with ``--password-stdin``, from the first line of standard input;
never from the command line, where ``ps`` would show them.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from schemas.account import Security
from services.api import oauth2_cli
from services.api.account_management import Accounts
from services.api.callers import Caller, Role, TokenTable
from services.api.errors import ApiError, VerificationFailed
from services.api.models import AccountInput, EndpointInput, PasswordInput, VerifyRequest
from services.api.operations import Operations
from services.api.resources import Resources, open_resources
from services.api.settings import ApiSettings
from services.local_run import cli_settings

OPERATOR = Caller(user_id="cli", role=Role.ADMIN)


def add_parser(sub: Any) -> None:
    acc = sub.add_parser("accounts", help="manage accounts (verify, save, list, ...)")
    ops = acc.add_subparsers(dest="action", required=True)
    ver = ops.add_parser("verify", help="log in and preview an account; saves nothing")
    ver.add_argument("--preset", help="gmail, outlook, yahoo, icloud, fastmail, ...")
    ver.add_argument("--username", required=True)
    ver.add_argument("--host")
    ver.add_argument("--port", type=int)
    ver.add_argument("--security", choices=[s.value for s in Security])
    ver.add_argument("--smtp-host")
    ver.add_argument("--smtp-port", type=int)
    ver.add_argument("--smtp-security", choices=[s.value for s in Security])
    ver.add_argument("--smtp-username", help="default: --username, when an SMTP host is given")
    save = ops.add_parser("save", help="create (or with --update, change) an account")
    save.add_argument("file", type=Path, help="the account as JSON (POST /v1/accounts body)")
    save.add_argument("--update", metavar="ID", help="change this account instead")
    save.add_argument(
        "--with-password", action="store_true", help="ask for the password (or --password-stdin)"
    )
    ops.add_parser("list", help="every account with its state")
    asks = [ver, save]
    for name, text in (
        ("show", "one account"),
        ("set-password", "supply or change the password"),
        ("pause", "stop syncing"),
        ("resume", "sync again (also retries an auth_failed account)"),
        ("resync", "import again from the start, mail erased on request included"),
        ("remove", "remove the account"),
    ):
        p = ops.add_parser(name, help=text)
        p.add_argument("account_id")
        if name == "remove":
            p.add_argument("--purge", action="store_true", help="also delete its activities")
        if name == "set-password":
            asks.append(p)
    ops.add_parser("rotate-key", help="re-encrypt every secret with the newest key")
    oauth2_cli.add_parser(ops)
    for p in asks:
        p.add_argument("--password-stdin", action="store_true", help="read it from stdin")


def _password(args: argparse.Namespace) -> SecretStr:
    if args.password_stdin:
        return SecretStr(sys.stdin.readline().rstrip("\r\n"))
    if not sys.stdin.isatty():
        raise SystemExit(
            "mailsync accounts: no terminal to ask for the password (--password-stdin)"
        )
    return SecretStr(getpass.getpass("password: "))


def _show(value: BaseModel | list[Any]) -> None:
    if isinstance(value, list):
        print(json.dumps([v.model_dump(mode="json", by_alias=True) for v in value], indent=2))
    else:
        print(value.model_dump_json(indent=2, by_alias=True))


def _verify_request(args: argparse.Namespace) -> VerifyRequest:
    smtp = None
    if args.smtp_host or args.smtp_port or (args.preset and args.smtp_username):
        smtp = EndpointInput(
            host=args.smtp_host,
            port=args.smtp_port,
            security=args.smtp_security,
            username=args.smtp_username or args.username,
        )
    return VerifyRequest(
        preset=args.preset,
        imap=EndpointInput(
            host=args.host, port=args.port, security=args.security, username=args.username
        ),
        smtp=smtp,
        password=_password(args),
    )


async def _dispatch(args: argparse.Namespace, res: Resources) -> BaseModel | list[Any]:
    accounts, ops = Accounts(res), Operations(res)
    action: str = args.action
    if action == "verify":
        return await accounts.verify(_verify_request(args))
    if action == "save":
        data = AccountInput.model_validate_json(args.file.read_text())
        # --password-stdin says where the password is: it asks for one as well.
        if args.with_password or args.password_stdin:
            data = data.model_copy(update={"password": _password(args)})
        if args.update:
            return await accounts.update(OPERATOR, args.update, data)
        return await accounts.create(OPERATOR, data)
    if action == "list":
        return await accounts.views(OPERATOR)
    if action == "show":
        return await accounts.view(OPERATOR, args.account_id)
    if action == "set-password":
        return await accounts.set_password(
            OPERATOR, args.account_id, PasswordInput(password=_password(args))
        )
    simple: dict[str, Callable[[Caller, str], Awaitable[BaseModel]]] = {
        "pause": ops.pause,
        "resume": ops.resume,
        "resync": ops.resync,
    }
    if action in simple:
        return await simple[action](OPERATOR, args.account_id)
    if action == "remove":
        return await ops.remove(OPERATOR, args.account_id, purge=args.purge)
    if action == "rotate-key":
        return await ops.rotate_key(OPERATOR)
    if action == "oauth2-start":
        return await oauth2_cli.sign_in(args, res, OPERATOR)
    raise SystemExit(f"unknown action {action}")


def run(args: argparse.Namespace) -> int:
    settings = cli_settings(ApiSettings)

    async def main() -> BaseModel | list[Any]:
        async with open_resources(settings, TokenTable({}), client_id="mailsync-cli") as res:
            return await _dispatch(args, res)

    try:
        _show(asyncio.run(main()))
    except VerificationFailed as exc:
        f = exc.failure
        print(f"mailsync accounts: {f.code}: {f.message}\n  {f.hint}", file=sys.stderr)
        return 1
    except ApiError as exc:
        print(f"mailsync accounts: {exc.code}: {exc}", file=sys.stderr)
        return 1
    except ValidationError as exc:
        # Without the input: it may hold a password.
        errors = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False)
        )
        print(f"mailsync accounts: invalid input: {errors}", file=sys.stderr)
        return 1
    return 0
