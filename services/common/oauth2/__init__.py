"""OAuth2 for IMAP and SMTP logins (XOAUTH2, OAUTHBEARER RFC 7628).

- :mod:`.provider` :class:`TokenProvider`: refresh-token grant, per-account cache
- :mod:`.refresh`  pure: when to refresh, the request form, the response's meaning
- :mod:`.sasl`     pure: the SASL initial responses
- :mod:`.errors`   :class:`OAuth2Revoked`, :class:`OAuth2Rejected`, :class:`OAuth2Unavailable`
"""

from services.common.oauth2.errors import OAuth2Rejected, OAuth2Revoked, OAuth2Unavailable
from services.common.oauth2.provider import AccessToken, TokenProvider
from services.common.oauth2.refresh import needs_refresh
from services.common.oauth2.sasl import (
    error_ack,
    initial_response,
    oauthbearer_response,
    xoauth2_response,
)

__all__ = [
    "AccessToken",
    "OAuth2Rejected",
    "OAuth2Revoked",
    "OAuth2Unavailable",
    "TokenProvider",
    "error_ack",
    "initial_response",
    "needs_refresh",
    "oauthbearer_response",
    "xoauth2_response",
]
