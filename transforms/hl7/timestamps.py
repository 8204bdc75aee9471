"""HL7 time stamps (TS/DTM): ``YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]``.

A time stamp without an offset is local time of the sender; the route says which zone that is (UTC by
default). v2.3-2.5 TS may carry a second component (degree of precision), which is ignored.
"""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache

_DTM = re.compile(
    r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4}))?(?:([+-])(\d{2})(\d{2}))?$"
)


@lru_cache(maxsize=4096)  # a message's OBX rows mostly share one time stamp; monitors repeat them
def parse_timestamp(text: str, zone: tzinfo = UTC) -> datetime:
    """The instant ``text`` names, as an aware UTC datetime. Raises ValueError when it is not a DTM."""
    match = _DTM.match(text.strip())
    if not match:
        raise ValueError(f"not an HL7 time stamp: {text!r}")
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
    if hour is not None and (month is None or day is None):
        raise ValueError(f"not an HL7 time stamp: {text!r}")
    micro = int((fraction or "0").ljust(6, "0")[:6])
    local = datetime(int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0),
                     int(second or 0), micro)
    if sign:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        if offset >= timedelta(hours=24):
            raise ValueError(f"time zone offset out of range: {text!r}")
        aware = local.replace(tzinfo=timezone(offset if sign == "+" else -offset))
    else:
        aware = local.replace(tzinfo=zone)
    return aware.astimezone(UTC)


_last_formatted: tuple[tuple[object, ...], str] = ((), "")  # every ACK of the same second has the same MSH-7


def format_timestamp(moment: datetime) -> str:
    """An HL7 DTM with seconds and offset, for MSH-7 of the messages we write."""
    global _last_formatted
    key = (moment.second, moment.minute, moment.hour, moment.day, moment.month, moment.year, moment.tzinfo,
           moment.fold)
    last_key, text = _last_formatted
    if key != last_key:
        text = moment.strftime("%Y%m%d%H%M%S%z")
        _last_formatted = (key, text)
    return text
