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
- ``GET /authorize``: the authorization code grant (RFC 6749 section 4.1) with PKCE
  (RFC 7636, ``S256`` only): a login and consent page (e-mail, password, the scopes
  asked for, "Allow" and "Deny"). ``POST /authorize`` (the page's form) redirects to the
  client's registered redirect URI with ``code`` and ``state``, or with
  ``error=access_denied`` when the user denies (section 4.1.2.1). An unknown client or a
  redirect URI it did not register gets an error page and no redirect (the same
  section: never redirect to an unverified URI).
- ``POST /token`` with ``grant_type=authorization_code`` (section 4.1.3): the code (one
  use, 60 s), the same ``redirect_uri`` and the PKCE ``code_verifier``; answers an access
  token, a refresh token and, when ``openid`` was asked for, an ID token (an unsecured
  JWS with ``email``, OpenID Connect Core section 2).
- ``GET /userinfo``: OpenID Connect Core section 5.3, the signed-in user's ``email``.
- ``POST /introspect``: token introspection (RFC 7662): ``{"active": true, "email": ...}``
  for a live access token. Dovecot's oauth2 passdb and the dev SMTP server ask it.

Admin calls stand in for the provider's own administration: ``POST /admin/users``
(a user who may sign in), ``POST /admin/clients`` (a client, with its redirect URIs),
``POST /admin/grants`` makes a refresh token for a user without the consent page;
``POST /admin/revoke`` revokes one with every access token it issued (the user withdrew
consent); ``GET /admin/grants/<refresh token>`` tells how often it was refreshed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import secrets
import signal
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit


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
    """A confidential client: of the client-credentials grant (a Kafka service account),
    or of the authorization code grant (mailsync's accounts API, with its redirect URIs)."""

    secret: str
    lifetime_s: float
    scope: frozenset[str]
    redirect_uris: frozenset[str] = frozenset()
    rotate: bool = False
    issued: int = 0


@dataclass
class Code:
    """An authorization code (RFC 6749 section 4.1.2): one use, bound to the client, the
    redirect URI and the PKCE challenge."""

    user: str
    client_id: str
    redirect_uri: str
    challenge: str
    scope: str
    expires_at: float


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
        self.users: dict[str, str] = {}  # e-mail -> password, who may sign in
        self.codes: dict[str, Code] = {}

    def add_user(self, spec: dict[str, Any]) -> str:
        user = str(spec["user"]).lower()
        with self.lock:
            self.users[user] = str(spec["password"])
        return user

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
                redirect_uris=frozenset(spec.get("redirect_uris", ())),
                rotate=bool(spec.get("rotate", False)),
            )
        return client_id

    # -- the authorization code grant (RFC 6749 section 4.1, PKCE RFC 7636) ---------------
    def check_authorization(self, query: dict[str, str]) -> str | None:
        """Why the request cannot even be answered by a redirect (section 4.1.2.1: an
        unknown client or an unregistered redirect URI), or None."""
        with self.lock:
            client = self.clients.get(query.get("client_id", ""))
            if client is None:
                return "unknown client_id"
            if query.get("redirect_uri") not in client.redirect_uris:
                return "redirect_uri is not registered for this client"
        return None

    def authorization_error(self, query: dict[str, str]) -> str | None:
        """An error to send back to the client by redirect (section 4.1.2.1), or None."""
        if query.get("response_type") != "code":
            return "unsupported_response_type"
        # RFC 7636 section 4.4.1: this server requires PKCE, and only S256.
        if not query.get("code_challenge") or query.get("code_challenge_method") != "S256":
            return "invalid_request"
        return None

    def sign_in(self, user: str, password: str) -> bool:
        with self.lock:
            known = self.users.get(user.strip().lower())
        return known is not None and secrets.compare_digest(known, password)

    def issue_code(self, user: str, query: dict[str, str]) -> str:
        code = "ac-" + secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = Code(
                user=user.strip().lower(),
                client_id=query["client_id"],
                redirect_uri=query["redirect_uri"],
                challenge=query["code_challenge"],
                scope=query.get("scope", ""),
                expires_at=time.time() + 60,
            )
        return code

    def authorization_code(
        self, form: dict[str, str], basic: tuple[str, str] | None
    ) -> tuple[int, dict[str, Any]]:
        """Section 4.1.3: the code for tokens, with PKCE's verifier (RFC 7636 4.5-4.6)."""
        client_id, client_secret = basic if basic else (form.get("client_id", ""), None)
        with self.lock:
            client = self.clients.get(client_id)
            if client is None or client.secret != client_secret:
                return 401, {"error": "invalid_client"}
            code = self.codes.pop(form.get("code", ""), None)  # one use (section 4.1.2)
            if code is None or code.client_id != client_id or code.expires_at < time.time():
                return 400, {"error": "invalid_grant", "error_description": "unknown code"}
            if form.get("redirect_uri") != code.redirect_uri:
                return 400, {"error": "invalid_grant", "error_description": "redirect_uri"}
            verifier = form.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
            if not verifier or _b64url(digest) != code.challenge:
                return 400, {"error": "invalid_grant", "error_description": "PKCE verifier"}
            refresh = "rt-" + secrets.token_urlsafe(24)
            grant = Grant(
                user=code.user,
                client_id=client_id,
                client_secret=client.secret,
                lifetime_s=client.lifetime_s,
                rotate=client.rotate,
            )
            self.grants[refresh] = self.issued[refresh] = grant
            access = "at-" + secrets.token_urlsafe(24)
            self.tokens[access] = AccessGrant(grant, time.time() + grant.lifetime_s)
            grant.access_tokens.add(access)
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": int(grant.lifetime_s),
            "refresh_token": refresh,
            "scope": code.scope,
        }
        if "openid" in code.scope.split():
            now = int(time.time())
            claims: dict[str, Any] = {"iss": "mailsync-dev", "aud": client_id}
            claims |= {"sub": code.user, "email": code.user, "iat": now, "exp": now + 300}
            body["id_token"] = unsecured_jws(claims)
        return 200, body

    def userinfo(self, token: str) -> dict[str, Any] | None:
        found = self.introspect(token)
        if not found["active"]:
            return None
        return {"sub": found["email"], "email": found["email"]}

    def token(
        self, form: dict[str, str], basic: tuple[str, str] | None
    ) -> tuple[int, dict[str, Any]]:
        """The token endpoint (RFC 6749 section 3.2): one grant type per request."""
        grant_type = form.get("grant_type")
        if grant_type == "refresh_token":
            return self.refresh(form, basic)
        if grant_type == "client_credentials":
            return self.client_credentials(form, basic)
        if grant_type == "authorization_code":
            return self.authorization_code(form, basic)
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


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in - mailsync dev</title>
<style>body{{font:15px system-ui,sans-serif;max-width:28em;margin:3em auto}}
label{{display:block;margin:.6em 0}}input{{width:100%;padding:.3em}}
button{{margin:.8em .6em 0 0;padding:.4em 1.4em}}.error{{color:#a00}}</style></head>
<body><h1>Sign in</h1>
<p><b>{client}</b> asks for access to your mailbox:</p><ul id="scopes">{scopes}</ul>
<p class="error" id="error">{error}</p>
<form method="post" action="/authorize">{hidden}
<label>E-mail <input id="username" name="username" value="{username}" autocomplete="off"></label>
<label>Password <input id="password" name="password" type="password"></label>
<button id="allow" name="decision" value="allow">Allow</button>
<button id="deny" name="decision" value="deny">Deny</button>
</form></body></html>
"""
# What the page sends back with the user's answer (RFC 6749 section 4.1.1 and RFC 7636).
_CARRIED = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)


def consent_page(query: dict[str, str], error: str = "") -> str:
    """The login and consent page of an authorization request."""
    hidden = "".join(
        f'<input type="hidden" name="{k}" value="{html.escape(query[k])}">'
        for k in _CARRIED
        if k in query
    )
    scopes = "".join(f"<li>{html.escape(s)}</li>" for s in query.get("scope", "").split())
    return _PAGE.format(
        client=html.escape(query.get("client_id", "")),
        scopes=scopes,
        error=html.escape(error),
        hidden=hidden,
        username=html.escape(query.get("username", query.get("login_hint", ""))),
    )


def redirect_to(redirect_uri: str, params: dict[str, str]) -> str:
    """``redirect_uri`` with ``params`` added to its query (section 3.1.2: keep its own)."""
    sep = "&" if urlsplit(redirect_uri).query else "?"
    return f"{redirect_uri}{sep}{urlencode(params)}"


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

        def _page(self, status: int, text: str) -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _redirect(self, location: str) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _authorize(self, query: dict[str, str], answered: bool) -> None:
            """Section 4.1.1-4.1.2: the page, then the user's answer as a redirect."""
            refused = server.check_authorization(query)
            if refused is not None:
                self._page(400, f"<h1>Invalid request</h1><p>{html.escape(refused)}</p>")
                return
            back = {"state": query["state"]} if "state" in query else {}
            error = server.authorization_error(query)
            if error is None and answered and query.get("decision") != "allow":
                error = "access_denied"  # section 4.1.2.1: the user denied the request
            if error is not None:
                self._redirect(redirect_to(query["redirect_uri"], {"error": error, **back}))
                return
            if not answered:
                self._page(200, consent_page(query))
                return
            user = query.get("username", "")
            if not server.sign_in(user, query.get("password", "")):
                self._page(200, consent_page(query, "Wrong e-mail or password."))
                return
            code = server.issue_code(user, query)
            self._redirect(redirect_to(query["redirect_uri"], {"code": code, **back}))

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
            if self.path == "/authorize":
                self._authorize(self._form(), answered=True)
            elif self.path == "/token":
                self._reply(*server.token(self._form(), self._basic()))
            elif self.path == "/introspect":
                self._reply(200, server.introspect(self._form().get("token", "")))
            elif self.path == "/admin/grants":
                self._reply(201, {"refresh_token": server.add_grant(json.loads(self._body()))})
            elif self.path == "/admin/users":
                self._reply(201, {"user": server.add_user(json.loads(self._body()))})
            elif self.path == "/admin/clients":
                self._reply(201, {"client_id": server.add_client(json.loads(self._body()))})
            elif self.path == "/admin/revoke":
                found = server.revoke(json.loads(self._body())["refresh_token"])
                self._reply(200 if found else 404, {"revoked": found})
            else:
                self._reply(404, {"error": "not_found"})

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/authorize":
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                self._authorize(query, answered=False)
            elif parts.path == "/userinfo":
                header = self.headers.get("Authorization", "")
                info = server.userinfo(header[7:] if header.lower().startswith("bearer ") else "")
                self._reply(200 if info else 401, info or {"error": "invalid_token"})
            elif self.path.startswith("/admin/grants/"):
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
