"""IMAP dates (pure): the ``date-time`` a server sends, the ``date`` SEARCH takes.

RFC 3501 section 9: INTERNALDATE is a ``date-time`` (``23-Nov-2026 16:15:18 +0000``);
SEARCH's SINCE, BEFORE, ON and SENTSINCE take a ``date`` (``1-Feb-2026``). Month names
are English whatever the locale, so neither is left to ``strftime``.
"""

from __future__ import annotations

import datetime as dt
import re
from email.utils import parsedate_to_datetime

_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# RFC 3501 9: date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP
# zone DQUOTE, where date-day-fixed is (SP DIGIT) / 2DIGIT and the month is any case.
_DATE_TIME = re.compile(
    r" ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)"
)
_MONTHS = {m.lower(): i for i, m in enumerate(_MONTH_NAMES, 1)}
_ZONES: dict[str, dt.timezone] = {}


def search_date(day: dt.date) -> str:
    """RFC 3501 SEARCH takes a date as ``1-Feb-2026`` (date-day is 1*2DIGIT)."""
    return f"{day.day}-{_MONTH_NAMES[day.month - 1]}-{day.year}"


def parse_internaldate(text: str) -> dt.datetime | None:
    """``23-Nov-2026 16:15:18 +0000`` (RFC 3501 date-time) -> aware datetime.

    The strict form is read field by field (the email package's lenient parser cost
    more than the rest of a message's FETCH attributes together); anything else goes
    through that parser, and what neither reads is None.
    """
    m = _DATE_TIME.fullmatch(text)
    month = _MONTHS.get(m[2].lower(), 0) if m else 0
    if m and month:
        zone = _ZONES.get(text[-5:])  # the zone ends the strict form: "+0130"
        if zone is None:
            offset = dt.timedelta(hours=int(m[8]), minutes=int(m[9]))
            zone = _ZONES[text[-5:]] = dt.timezone(-offset if m[7] == "-" else offset)
        try:
            return dt.datetime(
                int(m[3]), month, int(m[1]), int(m[4]), int(m[5]), int(m[6]), tzinfo=zone
            )
        except ValueError:
            return None
    try:
        day, mon, rest = text.strip().split("-", 2)
        return parsedate_to_datetime(f"{int(day)} {mon} {rest}")
    except (ValueError, TypeError, IndexError):
        return None
