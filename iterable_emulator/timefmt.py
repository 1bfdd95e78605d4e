"""Iterable's date formats: parsing request parameters and formatting record timestamps.

Export and template queries take ``yyyy-MM-dd HH:mm:ss`` with an optional offset; records carry
``2021-04-14 16:25:55 +00:00`` (sometimes with milliseconds) and some user fields the ISO form
``2021-04-14T16:48:01+00:00``.
"""

import re
from datetime import datetime, timedelta, timezone

_QUERY_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\s*([+\- ])(\d{2}):?(\d{2})|Z)?$"
)
TWO_DIGITS = [f"{n:02d}" for n in range(60)]
MINUTES = [f"{h:02d}:{m:02d}" for h in range(24) for m in range(60)]


def parse_query_datetime(text: str) -> int:
    """Epoch seconds of an Iterable query date such as ``2024-01-01 00:00:00 +00:00``.

    No offset means UTC, as every known client assumes. A space where the sign should be is read
    as ``+``, because clients that do not percent-encode ``+`` have it decoded into a space.
    Raises ``ValueError`` for anything else.
    """
    match = _QUERY_DATETIME.match(text.strip())
    if not match:
        raise ValueError(f"Invalid date {text!r}, expected yyyy-MM-dd HH:mm:ss [ZZ]")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    sign, off_h, off_m = match.groups()[6:]
    moment = datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)
    if sign:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        moment -= -offset if sign == "-" else offset
    return int(moment.timestamp())


def to_epoch_s(value) -> int:
    """Epoch seconds of a ``datetime`` (naive means UTC), an ISO string, an Iterable query date, or
    an int (already epoch seconds)."""
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return parse_query_datetime(value)
        except ValueError:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return int(value.timestamp())


def to_epoch_ms(value) -> int:
    """Epoch milliseconds of a ``datetime`` (naive means UTC), a number of epoch seconds, or a string
    ``to_epoch_s`` accepts."""
    if isinstance(value, (int, float)):
        return int(value * 1000)
    if isinstance(value, datetime):
        return int((value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp() * 1000)
    return to_epoch_s(value) * 1000


def query_datetime(epoch_s: int) -> str:
    """Format epoch seconds the way export and template queries expect them."""
    return datetime.fromtimestamp(epoch_s, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


class TimestampFormatter:
    """Formats epoch milliseconds as record timestamps at export speed.

    ``strftime`` costs microseconds per call, which alone would eat the export throughput budget;
    caching the date per day and looking up the time of day in tables keeps it cheap.
    """

    def __init__(self):
        self.dates: dict[int, str] = {}

    def date(self, day: int) -> str:
        """``yyyy-MM-dd`` of a day number since the epoch; cached in ``dates``."""
        text = self.dates.get(day)
        if text is None:
            text = datetime.fromtimestamp(day * 86_400, timezone.utc).strftime("%Y-%m-%d")
            self.dates[day] = text
        return text

    def event(self, ms: int, fractional: bool = False) -> str:
        """``2021-04-14 16:25:55 +00:00``, or ``... 16:25:55.123 +00:00`` when ``fractional``."""
        day, rest = divmod(ms, 86_400_000)
        date = self.dates.get(day) or self.date(day)
        if fractional:
            return f"{date} {MINUTES[rest // 60_000]}:{TWO_DIGITS[rest // 1000 % 60]}.{rest % 1000:03d} +00:00"
        return f"{date} {MINUTES[rest // 60_000]}:{TWO_DIGITS[rest // 1000 % 60]} +00:00"

    def iso(self, ms: int) -> str:
        """``2021-04-14T16:48:01+00:00``, the form some ``profileUpdatedAt`` values take."""
        day, rest = divmod(ms, 86_400_000)
        minute, rest = divmod(rest, 60_000)
        return f"{self.date(day)}T{MINUTES[minute]}:{TWO_DIGITS[rest // 1000]}+00:00"
