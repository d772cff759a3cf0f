"""Dovecot as an ordinary process: IMAP, IMAPS and LMTP on loopback, Maildir in a directory.

Users live in a passwd-file (Dovecot re-reads it when it changes), so tests can add
users while the server runs. Given an OAuth2 introspection URL (RFC 7662, see
:mod:`devservers.oauth_server`), Dovecot also accepts ``AUTHENTICATE XOAUTH2`` and
``OAUTHBEARER`` (RFC 7628) with access tokens it checks there: a second passdb, asked
when the passwd-file one does not match. ``doveadm`` runs against the same config to change
UIDVALIDITY, expunge, create folders and so on, as an operator would.
"""

from __future__ import annotations

import getpass
import os
import shutil
import smtplib
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from devservers._process import ChildProcess, ServerStartError, free_port, port_answers, wait_until
from devservers._tls import SelfSignedCert

# Folders every mailbox has, with their RFC 6154 special-use attribute. The Czech
# names are there so that tests prove roles are read from the attribute, not the name.
SPECIAL_USE: dict[str, str] = {
    "Sent": r"\Sent",
    "Drafts": r"\Drafts",
    "Trash": r"\Trash",
    "Junk": r"\Junk",
    "Archive": r"\Archive",
    "Odeslaná pošta": r"\Sent",
    "Koš": r"\Trash",
}
AUTO_CREATED = ("Sent", "Drafts", "Trash", "Junk", "Archive")


@dataclass(frozen=True)
class MailUser:
    address: str
    password: str


def _oauth2_config(introspection_url: str) -> str:
    """Dovecot 2.3's oauth2 passdb: the token is valid when introspection says
    ``"active": true`` and its ``email`` is the login name."""
    return f"""introspection_url = {introspection_url}
introspection_mode = post
force_introspection = yes
username_attribute = email
active_attribute = active
active_value = true
timeout_msecs = 5000
"""


# With ``max_connections`` (bench.scale): IMAP sessions per imap process. One process per
# session (Dovecot's default) costs a process and an inotify instance each; a few dozen
# per process is what large installations run. Each process IDLEs its sessions through
# one inotify instance (fs.inotify.max_user_instances, per mail uid).
CLIENTS_PER_IMAP_PROCESS = 50
# Sessions per login process in high-performance mode: each one holds its clients' TLS
# for the sessions' life (it proxies them to the imap process).
CLIENTS_PER_LOGIN_PROCESS = 1000


def imap_processes(max_connections: int) -> int:
    """imap processes Dovecot may start for ``max_connections`` sessions (some spare, as
    sessions of a dropped client linger a moment)."""
    return -(-max_connections // CLIENTS_PER_IMAP_PROCESS) + 10


def _many_connections(max_connections: int) -> tuple[str, str]:
    """The imap-login service's extra settings and the imap service, for that many
    sessions at once."""
    login_processes = -(-max_connections // CLIENTS_PER_LOGIN_PROCESS) + 2
    login = f"""  service_count = 0
  client_limit = {CLIENTS_PER_LOGIN_PROCESS}
  process_min_avail = 2
  process_limit = {login_processes}
  vsz_limit = 1G
"""
    # service_count 0: an imap process serves clients until it is stopped (Dovecot's
    # default of 1 ends it after its first client, whatever client_limit says).
    imap = f"""service imap {{
  service_count = 0
  client_limit = {CLIENTS_PER_IMAP_PROCESS}
  process_limit = {imap_processes(max_connections)}
  vsz_limit = 1G
}}
"""
    return login, imap


# What the listener on LEAN_HOST announces after login (imap_capability): Dovecot's own
# capabilities mailsync may use, without NOTIFY (RFC 5465) and LIST-STATUS (RFC 5819),
# as many servers are: IDLE on one connection, the other folders polled on a second.
LEAN_HOST = "127.0.0.2"  # all of 127.0.0.0/8 is loopback: plaintext IMAP is allowed there
# A plain listener on LIMITED_HOST lets a user hold one IMAP session at a time (from one
# address): a server that refuses a second login (mail_max_userip_connections, 10 by
# default in Dovecot; "NO [LIMIT]", RFC 5530).
LIMITED_HOST = "127.0.0.3"
LEAN_CAPABILITY = (
    "IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE NAMESPACE UNSELECT CHILDREN UIDPLUS "
    "LIST-EXTENDED SPECIAL-USE CONDSTORE QRESYNC MOVE"
)


def _config(
    root: Path,
    cert: SelfSignedCert,
    imap: int,
    imaps: int,
    lmtp: int,
    oauth2: Path | None = None,
    max_connections: int | None = None,
    lean: int | None = None,
    limited: int | None = None,
) -> str:
    if os.geteuid() == 0:
        # Dovecot refuses mail access as root; Debian's `mail` user owns the Maildirs.
        mail_uid, mail_gid = "8", "8"
        internal, login = "dovecot", "dovenull"
    else:
        mail_uid, mail_gid = str(os.getuid()), str(os.getgid())
        internal = login = getpass.getuser()
    mailboxes = "\n".join(
        f'  mailbox "{name}" {{\n    special_use = {use}\n'
        + ("    auto = subscribe\n" if name in AUTO_CREATED else "")
        + "  }"
        for name, use in SPECIAL_USE.items()
    )
    oauth2_passdb = (
        f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {oauth2}\n}}"
        if oauth2 is not None
        else ""
    )
    # Each passdb sees only its own mechanisms: a token is never compared to a password.
    password_mechanisms = "  mechanisms = plain login\n" if oauth2 is not None else ""
    mechanisms = "plain login" + (" xoauth2 oauthbearer" if oauth2 is not None else "")
    login_service, imap_service = "  process_min_avail = 1\n", ""
    # Dovecot announces what a filter on the connection's local address says (config
    # "local" filter): a second listener, on another loopback address, plays a server
    # with fewer capabilities for the same users and mail.
    lean_listener = lean_filter = ""
    if lean is not None:
        lean_listener = (
            f"  inet_listener imap_lean {{\n    address = {LEAN_HOST}\n    port = {lean}\n  }}\n"
        )
        lean_filter = (
            f"local {LEAN_HOST} {{\n  protocol imap {{\n"
            f"    imap_capability = {LEAN_CAPABILITY}\n  }}\n}}\n"
        )
    if limited is not None:
        lean_listener += (
            f"  inet_listener imap_limited {{\n    address = {LIMITED_HOST}\n"
            f"    port = {limited}\n  }}\n"
        )
        # At the top level, not in "protocol imap": Dovecot takes the filter's value
        # over a top-level one, and refuses two filters that both set it.
        lean_filter += f"local {LIMITED_HOST} {{\n  mail_max_userip_connections = 1\n}}\n"
    # "OK Still here" to every IDLE client: each second in tests, Dovecot's 2 minutes
    # when many clients are idle (a second each would be thousands of lines a second).
    keepalive = "1 secs"
    if max_connections is not None:
        login_service, imap_service = _many_connections(max_connections)
        keepalive = "2 mins"
    return f"""
base_dir = {root}/run
state_dir = {root}/state
instance_name = mailsync-{imap}
log_path = {root}/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert.cert}
ssl_key = <{cert.key}
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
default_internal_user = {internal}
default_login_user = {login}
first_valid_uid = {mail_uid}
first_valid_gid = {mail_gid}
mail_uid = {mail_uid}
mail_gid = {mail_gid}
mail_location = maildir:{root}/mail/%d/%n/Maildir
mail_plugins =
mail_max_userip_connections = 200
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
{password_mechanisms}}}
{oauth2_passdb}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/users
  default_fields = home={root}/mail/%d/%n
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps}
    ssl = yes
  }}
{lean_listener}{login_service}}}
{imap_service}
# Every test user logs in from 127.0.0.1: Dovecot's per-IP authentication penalty
# (up to 15 s per login after failures, for everyone on that IP) would make one test's
# wrong password slow down all the others. A failed login still waits its 2 s.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp}
  }}
}}
namespace inbox {{
  inbox = yes
  separator = /
{mailboxes}
}}
protocol imap {{
  imap_idle_notify_interval = {keepalive}
}}
{lean_filter}protocol lmtp {{
  # Deliver to the mailbox user even when the RCPT names it by full address.
  lmtp_save_to_detail_mailbox = no
}}
"""


def _alive_in_group(group: int) -> bool:
    """Whether a process of that process group still runs (zombies do not count)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[2]) == group and fields[0] != "Z":
            return True
    return False


class DovecotServer:
    """A Dovecot instance under ``root`` (a directory the mail uid can traverse)."""

    def __init__(
        self,
        root: Path | None = None,
        *,
        oauth2_introspection_url: str | None = None,
        max_connections: int | None = None,
    ):
        """``max_connections``: IMAP sessions it must hold at once (bench.scale); it then
        runs several per imap process and its login processes in high-performance mode.
        None: Dovecot's defaults (a process per session), plenty for tests."""
        if root is None:
            # Not under pytest's 0700 tmp dirs: the Maildir belongs to the mail uid.
            root = Path(tempfile.mkdtemp(prefix="mailsync-dovecot-"))
            self._owns_root = True
        else:
            self._owns_root = False
        self.root = root
        self.imap_port, self.imaps_port, self.lmtp_port = free_port(), free_port(), free_port()
        # Plaintext IMAP on LEAN_HOST, announcing LEAN_CAPABILITY: a server without
        # NOTIFY and LIST-STATUS. Not with max_connections (bench.scale has no use for it).
        self.lean_imap_port = free_port() if max_connections is None else None
        # Plaintext IMAP on LIMITED_HOST: one session per user at a time.
        self.limited_imap_port = free_port() if max_connections is None else None
        self.config = root / "dovecot.conf"
        self.users_file = root / "users"
        self.cert: SelfSignedCert | None = None
        self.oauth2_introspection_url = oauth2_introspection_url
        self.max_connections = max_connections
        self._proc = ChildProcess(
            "dovecot", ["dovecot", "-F", "-c", str(self.config)], root / "dovecot.stdout.log"
        )

    # -- lifecycle ---------------------------------------------------------------------
    def start(self, timeout: float = 30) -> DovecotServer:
        if shutil.which("dovecot") is None:
            raise ServerStartError("dovecot not found: `make deps` installs Debian's dovecot-imapd")
        self.root.chmod(0o755)
        for sub in ("run", "state", "mail"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(self.root / "mail", 8, 8)
        self.cert = SelfSignedCert.create(self.root / "tls")
        oauth2 = None
        if self.oauth2_introspection_url is not None:
            oauth2 = self.root / "dovecot-oauth2.conf.ext"
            oauth2.write_text(_oauth2_config(self.oauth2_introspection_url))
        self.config.write_text(
            _config(
                self.root,
                self.cert,
                self.imap_port,
                self.imaps_port,
                self.lmtp_port,
                oauth2,
                self.max_connections,
                self.lean_imap_port,
                self.limited_imap_port,
            )
        )
        self.users_file.touch()
        self._proc.start()
        self._wait_answering(timeout)
        return self

    def _wait_answering(self, timeout: float) -> None:
        wait_until(
            port_answers(self.imap_port, b"* OK [CAPABILITY"),
            timeout=timeout,
            what="Dovecot",
            log=self.root / "dovecot.log",
        )

    def restart(self, timeout: float = 30) -> None:
        """Stop the server and start it again on the same ports, certificate and mail, as
        an operator restarts it: every session is dropped and every client logs in again."""
        group = self._proc.pid  # the master leads its own process group
        self._proc.stop()
        if group is not None:
            # The master exits before its children: a new one that finds their sockets
            # still answering refuses to start ("Dovecot is already running?").
            wait_until(
                lambda: not _alive_in_group(group),
                timeout=timeout,
                what="Dovecot's old processes to exit",
                log=self.root / "dovecot.log",
            )
        self._proc.start()
        self._wait_answering(timeout)

    def stop(self) -> None:
        self._proc.stop()
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- users and mail ----------------------------------------------------------------
    def add_user(self, address: str, password: str, *, settings: str = "") -> MailUser:
        """Create a mailbox user (its login is the full address).

        ``settings``: passwd-file extra fields overriding Dovecot settings for this user
        only, e.g. ``userdb_imap_capability=IMAP4rev1`` for a server without CONDSTORE,
        IDLE or MOVE (values cannot hold spaces).
        """
        if ":" in address + password + settings or "\n" in address + password + settings:
            raise ValueError("passwd-file fields cannot hold ':' or newlines")
        with self.users_file.open("a") as f:
            f.write(f"{address}:{{PLAIN}}{password}::::::{settings}\n")
        # Dovecot re-reads the passwd-file at most once a second: wait until it knows
        # the user, so a delivery right after this does not bounce.
        wait_until(
            lambda: self._known(address),
            timeout=10,
            what=f"Dovecot user {address}",
            log=self.root / "dovecot.log",
        )
        return MailUser(address, password)

    def add_users(self, users: Iterable[MailUser]) -> None:
        """Create many mailbox users at once (one wait for Dovecot to re-read the file)."""
        lines, last = [], None
        for user in users:
            if ":" in user.address + user.password or "\n" in user.address + user.password:
                raise ValueError("passwd-file fields cannot hold ':' or newlines")
            lines.append(f"{user.address}:{{PLAIN}}{user.password}::::::\n")
            last = user.address
        with self.users_file.open("a") as f:
            f.writelines(lines)
        if last is not None:
            wait_until(
                lambda: self._known(last),
                timeout=10,
                what=f"Dovecot user {last}",
                log=self.root / "dovecot.log",
            )

    def _known(self, address: str) -> bool:
        done = subprocess.run(
            ["doveadm", "-c", str(self.config), "user", address], capture_output=True, check=False
        )
        return done.returncode == 0

    def deliver(self, rcpt: str, message: bytes, mail_from: str = "sender@example.net") -> None:
        """Deliver one message straight into a mailbox over LMTP (RFC 2033)."""
        with smtplib.LMTP("127.0.0.1", self.lmtp_port) as lmtp:
            lmtp.sendmail(mail_from, [rcpt], message)

    def doveadm(self, *args: str) -> str:
        """Run ``doveadm`` against this instance and return its output."""
        done = subprocess.run(
            ["doveadm", "-c", str(self.config), *args],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"doveadm {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def save(self, user: str, folder: str, message: bytes) -> None:
        """File a message into a folder, as a mail client's APPEND would (``doveadm save``)."""
        done = subprocess.run(
            ["doveadm", "-c", str(self.config), "save", "-u", user, "-m", folder],
            input=message,
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"doveadm save failed: {done.stderr.decode(errors='replace')}")

    def deliver_many(self, user: str, messages: Iterable[bytes]) -> int:
        """Deliver many messages into the INBOX at once, as an MDA does: each file written
        to ``tmp/`` and renamed into ``new/`` (the Maildir delivery protocol). Thousands
        take a second, where one ``doveadm save`` or LMTP session each would take minutes.
        Dovecot assigns UIDs in file name order when it next looks at the folder."""
        local, _, domain = user.partition("@")
        maildir = self.root / "mail" / domain / local / "Maildir"
        dirs = [maildir.parent.parent, maildir.parent, maildir] + [
            maildir / sub for sub in ("tmp", "new", "cur")
        ]
        for d in dirs:
            d.mkdir(exist_ok=True)
        stamp, count = int(time.time()), 0
        for count, message in enumerate(messages, 1):
            name = f"{stamp}.M{count:07d}P{os.getpid()}.mailsync"
            (maildir / "tmp" / name).write_bytes(message)
            os.rename(maildir / "tmp" / name, maildir / "new" / name)
        if os.geteuid() == 0:  # the mail uid (see _config) must own what it reads
            for d in dirs:
                os.chown(d, 8, 8)
            for f in (maildir / "new").iterdir():
                os.chown(f, 8, 8)
        return count

    def create_folder(self, user: str, folder: str) -> None:
        self.doveadm("mailbox", "create", "-u", user, folder)

    def set_uidvalidity(self, user: str, folder: str, uidvalidity: int) -> None:
        self.doveadm("mailbox", "update", "-u", user, "--uid-validity", str(uidvalidity), folder)

    def expunge(self, user: str, folder: str, uid: int) -> None:
        self.doveadm("expunge", "-u", user, "mailbox", folder, "uid", str(uid))

    def status(self, user: str, folder: str) -> dict[str, str]:
        """``doveadm mailbox status``: messages, uidnext, uidvalidity, highestmodseq..."""
        line = self.doveadm("mailbox", "status", "-u", user, "all", folder).strip()
        _, _, fields = line.partition(" ")
        return dict(part.split("=", 1) for part in fields.split() if "=" in part)
