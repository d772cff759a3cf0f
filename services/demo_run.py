"""``mailsync run --demo``: a local Dovecot with two seeded mailboxes, and their accounts."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Iterator

from devservers import DovecotServer, SmtpServer
from devservers.demo import INFO, JANA, ORDERS, PASSWORDS, create_mailboxes, seed
from schemas.account import (
    AccountRecord,
    EncryptedSecret,
    Endpoint,
    PersonalOwnership,
    Security,
    SharedOwnership,
)
from schemas.topics import ACCOUNTS
from services.api.store import AccountStore
from services.common.kafka import ensure_topics, producer
from services.common.mongo import database, mongo_client
from services.common.secrets import SecretBox
from services.common.settings import CommonSettings


def demo_accounts(dovecot: DovecotServer, box: SecretBox) -> list[AccountRecord]:
    now = dt.datetime.now(dt.UTC)

    def imap(user: str) -> Endpoint:
        return Endpoint(
            host="127.0.0.1", port=dovecot.imaps_port, security=Security.TLS, username=user
        )

    return [
        AccountRecord(
            account_id="jana",
            address=JANA[1],
            display_name=JANA[0],
            ownership=PersonalOwnership(owner="jana"),
            imap=imap(JANA[1]),
            secret=EncryptedSecret(ciphertext=box.encrypt(PASSWORDS[JANA[1]])),
            folders=("INBOX", "Sent"),
            sent_folder="Sent",
            updated_at=now,
        ),
        AccountRecord(
            account_id="info",
            address=INFO[1],
            aliases=(ORDERS[1],),
            display_name=INFO[0],
            ownership=SharedOwnership(group="sales"),
            imap=imap(INFO[1]),
            secret=EncryptedSecret(ciphertext=box.encrypt(PASSWORDS[INFO[1]])),
            folders=("INBOX",),
            updated_at=now,
        ),
    ]


async def _publish(settings: CommonSettings, accounts: list[AccountRecord]) -> None:
    """Save the accounts as the accounts API does: in MongoDB (the API lists them from
    there) and on the accounts topic (the fetchers follow it)."""
    await ensure_topics(settings, [ACCOUNTS])
    prod = producer(settings, client_id="mailsync-demo")
    mongo = mongo_client(settings, app_name="mailsync-demo")
    await prod.start()
    try:
        store = AccountStore(database(mongo, settings), prod, settings)
        for account in accounts:
            await store.save(account)
    finally:
        await prod.stop()
        await mongo.close()


@contextlib.contextmanager
def start_demo(settings: CommonSettings) -> Iterator[dict[str, object]]:
    with DovecotServer() as dovecot, SmtpServer(dovecot) as smtp:
        print(
            f"demo Dovecot: IMAPS 127.0.0.1:{dovecot.imaps_port}, SMTP 127.0.0.1:{smtp.port}",
            flush=True,
        )
        create_mailboxes(dovecot, smtp)
        accounts = demo_accounts(dovecot, SecretBox(settings.secret_key))
        asyncio.run(_publish(settings, accounts))
        result = seed(dovecot, smtp)
        print(
            f"demo mail: {result.delivered} messages delivered over SMTP, "
            f"{result.filed_sent} replies filed in Jana's Sent",
            flush=True,
        )
        for acc in accounts:
            print(
                f"  account {acc.account_id}: {acc.address} {acc.aliases or ''} "
                f"({acc.ownership.kind}), password {PASSWORDS[acc.address]!r}",
                flush=True,
            )
        assert dovecot.cert is not None
        yield {"fetcher_ca_file": dovecot.cert.cert}
