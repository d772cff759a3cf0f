"""Realistic mail for the demo, the tests and the benchmarks (deterministic per seed).

Messages are built with the stdlib ``email`` package as a mail client would: encoded
words for non-ASCII names and subjects, multipart/alternative text+HTML, attachments.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr

CUSTOMERS = [
    ("Petr Dvořák", "petr.dvorak@stavby-dvorak.cz"),
    ("Zuzana Černá", "zuzana@kvetinarstvi-cerna.cz"),
    ("Jürgen Weiß", "j.weiss@weiss-maschinenbau.de"),
    ("Łucja Wójcik", "lucja.wojcik@drukarnia.pl"),
    ("田中 太郎", "tanaka@example.co.jp"),
    ("Emily Carter", "emily.carter@northwind.example"),
    ("Иван Петров", "ivan.petrov@example.ru"),
    ("Søren Kierkegaard", "soren@filosofi.dk"),
]
SUBJECTS = [
    "Objednávka č. {n} – potvrzení",
    "Re: Nabídka na servis kotle",
    "Rechnung {n}: Zahlungserinnerung",
    "見積もりのお願い（{n}）",
    "Reklamace zboží – faktura {n}",
    "Meeting notes and next steps",
    "Zamówienie {n} – termin dostawy",
    "Dotaz k dodací lhůtě",
    "Счёт на оплату №{n}",
    "Quarterly review: figures attached",
]
PARAGRAPHS = [
    "Dobrý den, posílám podklady k naší poslední schůzce. Prosím o potvrzení termínu.",
    "Vielen Dank für Ihre schnelle Antwort. Anbei finden Sie die aktualisierte Rechnung.",
    "Thank you for the quick turnaround. Could you confirm the delivery date by Friday?",
    "お世話になっております。添付の資料をご確認いただけますでしょうか。",
    "Uprzejmie prosimy o informację, czy zamówienie zostanie zrealizowane w terminie.",
    "Zboží dorazilo poškozené, přikládám fotografie a číslo faktury.",
]


@dataclass(frozen=True)
class Mail:
    sender: tuple[str, str]
    to: list[tuple[str, str]]
    cc: list[tuple[str, str]]
    message: bytes
    message_id: str


def _pdf(rng: random.Random, size: int) -> bytes:
    body = rng.randbytes(size)
    return b"%PDF-1.4\n" + body + b"\n%%EOF\n"


def build(
    rng: random.Random,
    sender: tuple[str, str],
    to: list[tuple[str, str]],
    cc: list[tuple[str, str]] | None = None,
    *,
    date: dt.datetime,
    attachment: bool = False,
    in_reply_to: str | None = None,
    subject: str | None = None,
) -> Mail:
    cc = cc or []
    n = rng.randint(1000, 9999)
    msg = EmailMessage()
    msg["From"] = formataddr(sender)
    msg["To"] = ", ".join(formataddr(a) for a in to)
    if cc:
        msg["Cc"] = ", ".join(formataddr(a) for a in cc)
    msg["Subject"] = subject or rng.choice(SUBJECTS).format(n=n)
    msg["Date"] = format_datetime(date)
    # Deterministic per seed, so a re-seeded demo mailbox holds the same messages.
    message_id = f"<{rng.getrandbits(64):016x}.{n}@{sender[1].split('@', 1)[1]}>"
    msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    paras = rng.sample(PARAGRAPHS, k=rng.randint(1, 3))
    text = "\n\n".join(paras) + f"\n\n-- \n{sender[0]}\n"
    msg.set_content(text)
    msg.add_alternative(
        "<html><body>"
        + "".join(f"<p>{p}</p>" for p in paras)
        + f"<p>--<br>{sender[0]}</p></body></html>",
        subtype="html",
    )
    if attachment:
        msg.add_attachment(
            _pdf(rng, rng.randint(20_000, 120_000)),
            maintype="application",
            subtype="pdf",
            filename=f"faktura-{n}.pdf" if rng.random() < 0.5 else f"Angebot Nr. {n}.pdf",
        )
    # CRLF line ends, as on the wire (RFC 5322 2.1) and as IMAP servers store mail.
    return Mail(sender, to, cc, msg.as_bytes(policy=SMTP), message_id.strip("<>"))
