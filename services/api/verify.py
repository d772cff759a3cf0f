"""Step 1 of adding an account: log in to IMAP (and SMTP) and preview it, saving nothing.

A STARTTLS endpoint is first asked whether its port speaks TLS from the first byte
(:mod:`.tls_probe`): the usual mix-up (993 or 465 with STARTTLS) then fails at once with
the setting to change, instead of after the timeout.

IMAP goes through the fetcher's :class:`~services.imap.ImapSession`, so what verifies
here is what syncs later (same TLS rules, same STARTTLS, same login, the same STATUS
parser). Every failure is classified by :mod:`.verify_errors` into one code the user
can act on.
"""

from __future__ import annotations

import ssl

import aiosmtplib

from schemas.account import Endpoint, Security
from schemas.common import FolderRole
from services.api.errors import VerificationFailed
from services.api.models import FolderPreview, ImapPreview, SmtpPreview
from services.api.presets import Preset
from services.api.tls_probe import refuse_implicit_tls
from services.api.verify_errors import classify
from services.common.loopback import is_loopback
from services.common.oauth2 import AccessToken
from services.common.smtp_auth import smtp_token_login
from services.imap import Folder, ImapSession, InsecureConnection


async def verify_imap(
    endpoint: Endpoint,
    password: str | AccessToken,
    *,
    timeout: float,
    tls: ssl.SSLContext,
    preset: Preset | None = None,
) -> ImapPreview:
    """Log in (a password, or an OAuth2 access token), list the folders with their roles,
    counts and sizes; raise VerificationFailed."""
    try:
        await _not_implicit_tls(endpoint, timeout)
        async with ImapSession(endpoint, password, timeout=timeout, ssl_context=tls) as imap:
            capabilities = tuple(sorted(imap.client.protocol.capabilities))
            # RFC 8438: STATUS can report a folder's size in octets.
            with_size = imap.has("STATUS=SIZE")
            previews = [await _preview(imap, f, with_size) for f in await imap.list_folders()]
    except Exception as exc:
        raise VerificationFailed(classify(exc, "imap", preset)) from None
    sent = next((p.name for p in previews if p.role is FolderRole.SENT and p.selectable), None)
    sizes = [p.size for p in previews if p.selectable]
    return ImapPreview(
        endpoint=endpoint,
        capabilities=capabilities,
        folders=tuple(previews),
        suggested_folders=("INBOX", sent) if sent else ("INBOX",),
        sent_folder=sent,
        total_messages=sum(p.messages or 0 for p in previews),
        total_size=None if any(s is None for s in sizes) else sum(s or 0 for s in sizes),
    )


async def _not_implicit_tls(endpoint: Endpoint, timeout: float) -> None:
    """A STARTTLS (or plaintext, to this machine) endpoint on a port that speaks TLS from
    the first byte fails at once with a hint (:mod:`.tls_probe`), not after ``timeout``
    waiting for a greeting. A plaintext one elsewhere is refused without connecting."""
    plain_here = endpoint.security is Security.PLAIN and is_loopback(endpoint.host)
    if endpoint.security is Security.STARTTLS or plain_here:
        await refuse_implicit_tls(endpoint.host, endpoint.port, timeout=timeout)


async def _preview(imap: ImapSession, folder: Folder, with_size: bool) -> FolderPreview:
    if not folder.selectable:
        return FolderPreview(name=folder.name, role=folder.role, selectable=False)
    values = await imap.status_items(folder, "(MESSAGES SIZE)" if with_size else "(MESSAGES)")
    return FolderPreview(
        name=folder.name,
        role=folder.role,
        selectable=True,
        messages=values.get("MESSAGES"),
        size=values.get("SIZE"),
    )


async def verify_smtp(
    endpoint: Endpoint,
    password: str | AccessToken,
    *,
    timeout: float,
    tls: ssl.SSLContext,
    preset: Preset | None = None,
) -> SmtpPreview:
    """Connect (TLS or STARTTLS, RFC 8314 / RFC 3207), authenticate (RFC 4954), quit."""
    try:
        if endpoint.security is Security.PLAIN and not is_loopback(endpoint.host):
            raise InsecureConnection(
                f"plaintext SMTP to {endpoint.host} refused: use TLS or STARTTLS"
            )
        await _not_implicit_tls(endpoint, timeout)
        client = aiosmtplib.SMTP(
            hostname=endpoint.host,
            port=endpoint.port,
            use_tls=endpoint.security is Security.TLS,
            start_tls=endpoint.security is Security.STARTTLS,
            tls_context=tls,
            timeout=timeout,
        )
        async with client:
            if isinstance(password, AccessToken):
                await smtp_token_login(client, endpoint.username, password)
            else:
                await client.login(endpoint.username, password)
            extensions = tuple(sorted(client.esmtp_extensions))
            mechanisms = tuple(sorted(client.server_auth_methods))
    except Exception as exc:
        raise VerificationFailed(classify(exc, "smtp", preset)) from None
    return SmtpPreview(endpoint=endpoint, extensions=extensions, auth_mechanisms=mechanisms)
