"""Launcher for the dev OAuth2 server (see :mod:`devservers.oauth_server`)."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

from devservers._process import ChildProcess, free_port, port_answers, wait_until


class OAuthServer:
    """Token and introspection endpoints on loopback; the admin calls stand in for a
    user's consent and its withdrawal, and for registering a service account."""

    def __init__(self, root: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.token_url = f"{self.base}/token"
        self.authorize_url = f"{self.base}/authorize"
        self.userinfo_url = f"{self.base}/userinfo"
        self.introspection_url = f"{self.base}/introspect"
        self._proc = ChildProcess(
            "oauth",
            [sys.executable, "-m", "devservers.oauth_server", "--port", str(self.port)],
            root / "oauth.log",
        )

    def start(self, timeout: float = 30) -> OAuthServer:
        self._proc.start()
        wait_until(port_answers(self.port), timeout=timeout, what="OAuth2", log=self._proc.log)
        return self

    def stop(self) -> None:
        self._proc.stop()

    def __enter__(self) -> OAuthServer:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.base}{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def grant(
        self,
        user: str,
        client_id: str,
        client_secret: str | None = None,
        *,
        lifetime_s: float = 3600,
        rotate: bool = False,
    ) -> str:
        """A refresh token for ``user`` (as if they had consented); its access tokens
        live ``lifetime_s``; ``rotate`` issues a new refresh token on every refresh."""
        body = {
            "user": user,
            "client_id": client_id,
            "client_secret": client_secret,
            "lifetime_s": lifetime_s,
            "rotate": rotate,
        }
        return str(self._call("POST", "/admin/grants", body)["refresh_token"])

    def client(
        self,
        client_id: str,
        client_secret: str,
        *,
        lifetime_s: float = 3600,
        scope: str = "",
        redirect_uris: tuple[str, ...] = (),
        rotate: bool = False,
    ) -> None:
        """Register a confidential client: of the client-credentials grant (RFC 6749
        section 4.4), e.g. a Kafka service account, whose tokens are unsecured JWS that
        only a dev broker accepts; or, with ``redirect_uris``, of the authorization code
        grant (section 4.1), whose grants' access tokens live ``lifetime_s``."""
        body = {
            "client_id": client_id,
            "client_secret": client_secret,
            "lifetime_s": lifetime_s,
            "scope": scope,
            "redirect_uris": list(redirect_uris),
            "rotate": rotate,
        }
        self._call("POST", "/admin/clients", body)

    def user(self, user: str, password: str) -> None:
        """Someone who may sign in on the consent page."""
        self._call("POST", "/admin/users", {"user": user, "password": password})

    def issued(self, client_id: str) -> int:
        """How many access tokens the client-credentials grant gave ``client_id``."""
        return int(self._call("GET", f"/admin/clients/{quote(client_id, safe='')}")["issued"])

    def revoke(self, refresh_token: str) -> None:
        """The user withdraws consent: the refresh token and its access tokens die."""
        self._call("POST", "/admin/revoke", {"refresh_token": refresh_token})

    def refreshes(self, refresh_token: str) -> int:
        """How many access tokens were issued for the grant of ``refresh_token`` (any
        refresh token it ever had)."""
        try:
            return int(self._call("GET", f"/admin/grants/{refresh_token}")["refreshes"])
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return 0
            raise
