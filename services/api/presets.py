"""Server presets for common providers, and resolving a preset into endpoints (pure).

A preset fills in host, port and security so a user types only an address and a
password; anything the user gives explicitly wins. ``auth`` says what the provider
accepts: Gmail, Yahoo, iCloud and Fastmail take an app password for IMAP (an account
with 2-step verification refuses the normal one); Microsoft 365 / Outlook.com has
turned basic authentication off for IMAP and SMTP and needs OAuth2.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from schemas._base import Model
from schemas.account import Endpoint, Security


class AuthKind(StrEnum):
    PASSWORD = "password"
    APP_PASSWORD = "app_password"
    OAUTH2 = "oauth2"


class ServerPreset(Model):
    host: str
    port: int
    security: Security


class Preset(Model):
    id: str
    name: str
    domains: tuple[str, ...]
    imap: ServerPreset
    smtp: ServerPreset
    auth: tuple[AuthKind, ...]
    oauth2_provider: str | None = Field(
        default=None,
        description="The provider of POST /v1/accounts/oauth2/start that signs in here.",
    )
    note: str = ""


def _p(host: str, port: int, security: Security) -> ServerPreset:
    return ServerPreset(host=host, port=port, security=security)


TLS, STARTTLS = Security.TLS, Security.STARTTLS
PRESETS: dict[str, Preset] = {
    p.id: p
    for p in (
        Preset(
            id="gmail",
            name="Gmail / Google Workspace",
            domains=("gmail.com", "googlemail.com"),
            imap=_p("imap.gmail.com", 993, TLS),
            smtp=_p("smtp.gmail.com", 465, TLS),
            auth=(AuthKind.APP_PASSWORD, AuthKind.OAUTH2),
            oauth2_provider="google",
            note="Sign in with Google (OAuth2), or use an app password (Google Account > "
            "Security > App passwords) where the administrator allows them.",
        ),
        Preset(
            id="outlook",
            name="Outlook.com / Microsoft 365",
            domains=("outlook.com", "hotmail.com", "live.com", "msn.com"),
            imap=_p("outlook.office365.com", 993, TLS),
            smtp=_p("smtp.office365.com", 587, STARTTLS),
            auth=(AuthKind.OAUTH2,),
            oauth2_provider="microsoft",
            note="Microsoft turned basic authentication off for IMAP and SMTP: sign in with "
            "Microsoft (POST /v1/accounts/oauth2/start).",
        ),
        Preset(
            id="yahoo",
            name="Yahoo Mail",
            domains=("yahoo.com", "ymail.com"),
            imap=_p("imap.mail.yahoo.com", 993, TLS),
            smtp=_p("smtp.mail.yahoo.com", 465, TLS),
            auth=(AuthKind.APP_PASSWORD,),
            note="Generate an app password in the Yahoo account security settings.",
        ),
        Preset(
            id="icloud",
            name="iCloud Mail",
            domains=("icloud.com", "me.com", "mac.com"),
            imap=_p("imap.mail.me.com", 993, TLS),
            smtp=_p("smtp.mail.me.com", 587, STARTTLS),
            auth=(AuthKind.APP_PASSWORD,),
            note="Use an app-specific password from appleid.apple.com.",
        ),
        Preset(
            id="fastmail",
            name="Fastmail",
            domains=("fastmail.com", "fastmail.fm"),
            imap=_p("imap.fastmail.com", 993, TLS),
            smtp=_p("smtp.fastmail.com", 465, TLS),
            auth=(AuthKind.APP_PASSWORD,),
            note="Create an app password under Settings > Privacy & Security.",
        ),
        Preset(
            id="zoho",
            name="Zoho Mail",
            domains=("zoho.com", "zohomail.com"),
            imap=_p("imap.zoho.com", 993, TLS),
            smtp=_p("smtp.zoho.com", 465, TLS),
            auth=(AuthKind.PASSWORD, AuthKind.APP_PASSWORD),
        ),
        Preset(
            id="seznam",
            name="Seznam.cz Email",
            domains=("seznam.cz", "email.cz", "post.cz"),
            imap=_p("imap.seznam.cz", 993, TLS),
            smtp=_p("smtp.seznam.cz", 465, TLS),
            auth=(AuthKind.PASSWORD,),
        ),
        Preset(
            id="gmx",
            name="GMX",
            domains=("gmx.net", "gmx.de", "gmx.com"),
            imap=_p("imap.gmx.net", 993, TLS),
            smtp=_p("mail.gmx.net", 587, STARTTLS),
            auth=(AuthKind.PASSWORD,),
            note="Enable IMAP access in the GMX settings first.",
        ),
    )
}


def preset_for_address(address: str) -> Preset | None:
    """The preset of the address's domain, if it is a known provider."""
    domain = address.rpartition("@")[2].strip().lower()
    return next((p for p in PRESETS.values() if domain in p.domains), None)


class UnknownPreset(ValueError):
    pass


def get_preset(preset_id: str | None) -> Preset | None:
    if preset_id is None:
        return None
    try:
        return PRESETS[preset_id]
    except KeyError:
        raise UnknownPreset(
            f"unknown preset {preset_id!r}; known: {', '.join(sorted(PRESETS))}"
        ) from None


def resolve_endpoint(
    preset: ServerPreset | None,
    *,
    username: str,
    host: str | None,
    port: int | None,
    security: Security | None,
) -> Endpoint:
    """An endpoint from what the user gave, the preset filling in the rest."""
    if host is None and preset is None:
        raise ValueError("give a host, or a preset")
    chosen_security = security or (preset.security if preset else Security.TLS)
    default_port = {Security.TLS: 993, Security.STARTTLS: 143, Security.PLAIN: 143}
    return Endpoint(
        host=host or (preset.host if preset else ""),
        port=port or (preset.port if preset and host is None else default_port[chosen_security]),
        security=chosen_security,
        username=username,
    )
