"""A real OAuth2 authorization server, for the tests and the demo: token and introspection
endpoints over HTTP on loopback (stdlib ``http.server``, one thread per request).

Run as ``python -m devservers.oauth_server --port N``. It speaks:

- ``POST /token``: the refresh-token grant (RFC 6749 section 6), client authentication
  by HTTP Basic (section 2.3.1) or ``client_id`` for public clients; errors as in
  section 5.2 (``invalid_grant`` for an unknown, revoked or rotated-away token).
  And the client-credentials grant (section 4.4) for Kafka's OAUTHBEARER (KIP-768):
  the client authenticates with HTTP Basic and gets an *unsecured* JWS (RFC 7515 with
  ``"alg": "none"``, RFC 7519 claims ``sub``, ``iat``, ``exp``, ``scope``), the one
  token Kafka's default broker-side validator
  (``OAuthBearerUnsecuredValidatorCallbackHandler``) accepts. Anybody can forge such a
  token: it is for the tests' broker only, never a production token.
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
class Client:
    """A confidential client of the client-credentials grant (a Kafka service account)."""

    secret: str
    lifetime_s: float
    scope: frozenset[str]
    issued: int = 0


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
        self.clients: dict[str, Client] = {}

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

    def add_client(self, spec: dict[str, Any]) -> str:
        client_id = str(spec["client_id"])
        with self.lock:
            self.clients[client_id] = Client(
                secret=str(spec["client_secret"]),
                lifetime_s=float(spec.get("lifetime_s", 3600)),
                scope=frozenset(str(spec.get("scope", "")).split()),
            )
        return client_id

    def token(
        self, form: dict[str, str], basic: tuple[str, str] | None
    ) -> tuple[int, dict[str, Any]]:
        """The token endpoint (RFC 6749 section 3.2): one grant type per request."""
        grant_type = form.get("grant_type")
        if grant_type == "refresh_token":
            return self.refresh(form, basic)
        if grant_type == "client_credentials":
            return self.client_credentials(form, basic)
        return 400, {"error": "unsupported_grant_type"}

    def client_credentials(
        self, form: dict[str, str], basic: tuple[str, str] | None
    ) -> tuple[int, dict[str, Any]]:
        """RFC 6749 section 4.4: a confidential client asks for a token of its own."""
        with self.lock:
            client = self.clients.get(basic[0]) if basic else None
            if basic is None or client is None or client.secret != basic[1]:
                # Section 5.2: invalid_client, 401 when the client tried HTTP Basic.
                return 401, {"error": "invalid_client", "error_description": "unknown client"}
            asked = frozenset(form.get("scope", "").split())
            if not asked <= client.scope:
                return 400, {"error": "invalid_scope"}
            scope = asked or client.scope  # section 3.3: absent means the default scope
            client.issued += 1
        now = int(time.time())
        claims = {
            "sub": basic[0],
            "iat": now,
            "exp": now + int(client.lifetime_s),
            "scope": " ".join(sorted(scope)),
        }
        # Section 4.4.3: no refresh token; the client simply asks again.
        return 200, {
            "access_token": unsecured_jws(claims),
            "token_type": "Bearer",
            "expires_in": int(client.lifetime_s),
            "scope": claims["scope"],
        }

    def client_tokens(self, client_id: str) -> int | None:
        with self.lock:
            client = self.clients.get(client_id)
            return None if client is None else client.issued

    def refresh(
        self, form: dict[str, str], basic: tuple[str, str] | None
    ) -> tuple[int, dict[str, Any]]:
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


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unsecured_jws(claims: dict[str, Any]) -> str:
    """An unsigned JWS in compact form (RFC 7515 section 7.1 with RFC 7518 section 3.6's
    ``"alg": "none"``): base64url without padding, ``header.payload.`` with an empty
    signature. Only for a broker whose validator trusts unsigned tokens (dev only)."""
    header = _b64url(json.dumps({"alg": "none"}).encode())
    return f"{header}.{_b64url(json.dumps(claims).encode())}."


def _handler(server: AuthorizationServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            # The request line only: tokens travel in bodies, never in the log.
            print(f"{self.address_string()} {format % args}", flush=True)

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            if status == 401:
                # RFC 6749 section 5.2: a 401 names the scheme the client should use.
                self.send_header("WWW-Authenticate", 'Basic realm="mailsync-dev"')
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
                self._reply(*server.token(self._form(), self._basic()))
            elif self.path == "/introspect":
                self._reply(200, server.introspect(self._form().get("token", "")))
            elif self.path == "/admin/grants":
                self._reply(201, {"refresh_token": server.add_grant(json.loads(self._body()))})
            elif self.path == "/admin/clients":
                self._reply(201, {"client_id": server.add_client(json.loads(self._body()))})
            elif self.path == "/admin/revoke":
                found = server.revoke(json.loads(self._body())["refresh_token"])
                self._reply(200 if found else 404, {"revoked": found})
            else:
                self._reply(404, {"error": "not_found"})

        def do_GET(self) -> None:
            if self.path.startswith("/admin/grants/"):
                stats = server.stats(self.path.removeprefix("/admin/grants/"))
                self._reply(200 if stats else 404, stats or {"error": "not_found"})
            elif self.path.startswith("/admin/clients/"):
                client_id = unquote_plus(self.path.removeprefix("/admin/clients/"))
                issued = server.client_tokens(client_id)
                found = issued is not None
                self._reply(200 if found else 404, {"issued": issued} if found else {})
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
