"""The demo for ``make run``: two mailboxes in a local Dovecot, seeded with real mail.

- ``jana.novakova@example.com``: a personal mailbox (owner ``jana``), INBOX and Sent.
- ``info@example.com``: a shared mailbox (group ``sales``) with the alias
  ``orders@example.com``.

Mail arrives through the SMTP server (so it carries real trace headers); some of it
goes to both mailboxes, some to the alias, some has attachments and non-ASCII subjects.
Jana's replies are filed in her Sent folder, as her mail client would.
"""

from __future__ import annotations

import datetime as dt
import random
import smtplib
import ssl
from dataclasses import dataclass

from devservers._dovecot import DovecotServer
from devservers._smtp import SmtpServer
from devservers.corpus import CUSTOMERS, build

JANA = ("Jana Nováková", "jana.novakova@example.com")
INFO = ("Info | Example s.r.o.", "info@example.com")
ORDERS = ("Objednávky", "orders@example.com")
PASSWORDS = {JANA[1]: "jana-demo-password", INFO[1]: "info-demo-password"}


@dataclass(frozen=True)
class SeedResult:
    delivered: int
    filed_sent: int


def create_mailboxes(dovecot: DovecotServer, smtp: SmtpServer) -> None:
    for address, password in PASSWORDS.items():
        dovecot.add_user(address, password)
    smtp.add_alias(ORDERS[1], INFO[1])


def send(smtp: SmtpServer, mail_from: str, rcpts: list[str], message: bytes) -> None:
    """Deliver like an external MX would: STARTTLS, no AUTH, to local recipients."""
    assert smtp.dovecot.cert is not None
    tls = ssl.create_default_context(cafile=str(smtp.dovecot.cert.cert))
    with smtplib.SMTP("127.0.0.1", smtp.port, timeout=30) as client:
        client.starttls(context=tls)
        client.sendmail(mail_from, rcpts, message)


def seed(dovecot: DovecotServer, smtp: SmtpServer, count: int = 40, seed: int = 7) -> SeedResult:
    rng = random.Random(seed)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=count)
    delivered = filed = 0
    for i in range(count):
        customer = rng.choice(CUSTOMERS)
        when = start + dt.timedelta(days=i, hours=rng.randint(7, 17), minutes=rng.randint(0, 59))
        kind = i % 5
        if kind == 0:  # to Jana and to info@: one activity, two sightings
            mail = build(rng, customer, [JANA], [INFO], date=when, attachment=rng.random() < 0.4)
        elif kind == 1:  # to the alias of the shared mailbox
            mail = build(rng, customer, [ORDERS], date=when, attachment=rng.random() < 0.5)
        elif kind == 2:
            mail = build(rng, customer, [INFO], date=when)
        else:
            mail = build(rng, customer, [JANA], date=when, attachment=rng.random() < 0.3)
        rcpts = [a for _, a in mail.to + mail.cc]
        send(smtp, customer[1], rcpts, mail.message)
        delivered += 1
        if kind == 3:  # Jana answers from her mail client: the reply lands in her Sent
            reply = build(
                rng,
                JANA,
                [customer],
                date=when + dt.timedelta(hours=2),
                in_reply_to=f"<{mail.message_id}>",
                subject="Re: " + _subject(mail.message),
            )
            dovecot.save(JANA[1], "Sent", reply.message)
            filed += 1
    return SeedResult(delivered, filed)


def _subject(message: bytes) -> str:
    from email import message_from_bytes
    from email.policy import default

    return str(message_from_bytes(message, policy=default)["Subject"])
