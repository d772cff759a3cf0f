"""A real OAuth2 authorization server, for the tests and the demo: token and introspection
endpoints over HTTP on loopback (stdlib ``http.server``, one thread per request).

Run as ``python -m devservers.oauth_server --port N``. It speaks:

- ``POST /token``: the refresh-token grant (RFC 6749 section 6), client authentication
  by HTTP Basic (section 2.3.1) or ``client_id`` for public clients; errors as in
  section 5.2 (``invalid_grant`` for an unknown, revoked or rotated-away token).
- ``POST /introspect``: token introspection (RFC 7662): ``{"active": true, "email": ...}``
  for a live access token. Dovecot's oauth2 passdb and the dev SMTP server ask it.

The grant itself (the user's consent) is out of scope: ``POST /admin/grants`` makes a
refresh token for a user, as an authorization-code flow would have; ``POST
/admin/revoke`` revokes one with every access token it issued (the user withdrew
consent); ``GET /admin/grants/<refresh token>`` tells how often it was refreshed.
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import signal
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote_plus


@dataclass
class Grant:
    user: str
    client_id: str
    client_secret: str | None
    lifetime_s: float
    rotate: bool
    revoked: bool = False
    refreshes: int = 0
    access_tokens: set[str] = field(default_factory=set)


@dataclass
class AccessGrant:
    grant: Grant
    expires_at: float


class AuthorizationServer:
    """The state: grants by refresh token, access tokens; guarded by one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.grants: dict[str, Grant] = {}  # live refresh token -> grant
        self.issued: dict[str, Grant] = {}  # every refresh token ever issued, for stats
        self.tokens: dict[str, AccessGrant] = {}

    def add_grant(self, spec: dict[str, Any]) -> str:
        refresh = "rt-" + secrets.token_urlsafe(24)
        with self.lock:
            self.grants[refresh] = self.issued[refresh] = Grant(
                user=str(spec["user"]).lower(),
                client_id=str(spec["client_id"]),
                client_secret=spec.get("client_secret"),
                lifetime_s=float(spec.get("lifetime_s", 3600)),
                rotate=bool(spec.get("rotate", False)),
            )
        return refresh

    def revoke(self, refresh: str) -> bool:
        with self.lock:
            grant = self.issued.get(refresh)
            if grant is None:
                return False
            grant.revoked = True
            for token in grant.access_tokens:
                self.tokens.pop(token, None)
            return True

    def refresh(
        self, form: dict[str, str], basic: tuple[str, str] | None
    ) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") != "refresh_token":
            return 400, {"error": "unsupported_grant_type"}
        client_id, client_secret = basic if basic else (form.get("client_id", ""), None)
        with self.lock:
            old = form.get("refresh_token", "")
            grant = self.grants.get(old)
            if grant is None or grant.client_id != client_id:
                # Section 5.2: unknown, or issued to another client.
                return 400, {"error": "invalid_grant", "error_description": "unknown grant"}
            if grant.client_secret is not None and grant.client_secret != client_secret:
                return 401, {"error": "invalid_client"}
            if grant.revoked:
                return 400, {"error": "invalid_grant", "error_description": "grant revoked"}
            access = "at-" + secrets.token_urlsafe(24)
            self.tokens[access] = AccessGrant(grant, time.time() + grant.lifetime_s)
            grant.access_tokens.add(access)
            grant.refreshes += 1
            body: dict[str, Any] = {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": grant.lifetime_s,
            }
            if grant.rotate:
                new = "rt-" + secrets.token_urlsafe(24)
                self.grants[new] = self.issued[new] = grant
                del self.grants[old]  # the old refresh token stops working at once
                body["refresh_token"] = new
            return 200, body

    def introspect(self, token: str) -> dict[str, Any]:
        with self.lock:
            found = self.tokens.get(token)
            if found is None or found.grant.revoked or found.expires_at <= time.time():
                return {"active": False}  # RFC 7662 section 2.2: nothing else is said
            return {
                "active": True,
                "email": found.grant.user,
                "username": found.grant.user,
                "client_id": found.grant.client_id,
                "token_type": "Bearer",
                "exp": int(found.expires_at),
            }

    def stats(self, refresh: str) -> dict[str, Any] | None:
        with self.lock:
            grant = self.issued.get(refresh)
            if grant is None:
                return None
            return {"user": grant.user, "refreshes": grant.refreshes, "revoked": grant.revoked}


def _handler(server: AuthorizationServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            # The request line only: tokens travel in bodies, never in the log.
            print(f"{self.address_string()} {format % args}", flush=True)

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "no-store")  # RFC 6749 section 5.1
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _form(self) -> dict[str, str]:
            parsed = parse_qs(self._body().decode(), keep_blank_values=True)
            return {k: v[0] for k, v in parsed.items()}

        def _basic(self) -> tuple[str, str] | None:
            header = self.headers.get("Authorization", "")
            if not header.lower().startswith("basic "):
                return None
            pair = base64.b64decode(header[6:]).decode()
            client_id, _, client_secret = pair.partition(":")
            return unquote_plus(client_id), unquote_plus(client_secret)

        def do_POST(self) -> None:
            if self.path == "/token":
                self._reply(*server.refresh(self._form(), self._basic()))
            elif self.path == "/introspect":
                self._reply(200, server.introspect(self._form().get("token", "")))
            elif self.path == "/admin/grants":
                self._reply(201, {"refresh_token": server.add_grant(json.loads(self._body()))})
            elif self.path == "/admin/revoke":
                found = server.revoke(json.loads(self._body())["refresh_token"])
                self._reply(200 if found else 404, {"revoked": found})
            else:
                self._reply(404, {"error": "not_found"})

        def do_GET(self) -> None:
            if self.path.startswith("/admin/grants/"):
                stats = server.stats(self.path.removeprefix("/admin/grants/"))
                self._reply(200 if stats else 404, stats or {"error": "not_found"})
            else:
                self._reply(404, {"error": "not_found"})

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), _handler(AuthorizationServer()))
    httpd.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=httpd.shutdown).start())
    print(f"oauth listening on 127.0.0.1:{args.port}", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()
