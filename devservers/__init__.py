"""Real servers on loopback for the embedded default, the demo and the tests.

Each launcher starts an ordinary process on a free loopback port, waits until the
server answers its own protocol, and stops it on exit:

- :class:`KafkaBroker`   Apache Kafka, one KRaft node (jars from Maven Central, see
  :mod:`devservers._kafka_dist`), optionally with SASL_SSL and mutual-TLS listeners
- :class:`SecantusServer` MongoDB wire protocol (SecantusDB over WiredTiger)
- :class:`DovecotServer`  IMAP (plain + implicit TLS) and LMTP, Maildir under a directory;
  a second plain listener on :data:`LEAN_HOST` announces no NOTIFY or LIST-STATUS, a
  third on :data:`LIMITED_HOST` lets a user hold one session at a time
- :class:`SmtpServer`     SMTP with AUTH and STARTTLS, delivering into Dovecot's LMTP
- :class:`OAuthServer`    OAuth2 token (RFC 6749) and introspection (RFC 7662) endpoints
  that Dovecot and the SMTP server check XOAUTH2/OAUTHBEARER tokens against

None of this is production runtime: production points ``MAILSYNC_KAFKA_BOOTSTRAP`` and
``MAILSYNC_MONGO_URI`` at real clusters and mailboxes live on real mail servers.
"""

from devservers._dovecot import LEAN_HOST, LIMITED_HOST, DovecotServer, MailUser
from devservers._kafka import KafkaBroker, SecureListeners
from devservers._oauth import OAuthServer
from devservers._process import ServerStartError
from devservers._secantus import SecantusServer
from devservers._smtp import SmtpServer
from devservers._tls import CertificateAuthority, SelfSignedCert

__all__ = [
    "LEAN_HOST",
    "LIMITED_HOST",
    "CertificateAuthority",
    "DovecotServer",
    "KafkaBroker",
    "MailUser",
    "OAuthServer",
    "SecantusServer",
    "SecureListeners",
    "SelfSignedCert",
    "ServerStartError",
    "SmtpServer",
]
