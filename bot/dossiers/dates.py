"""Dates as Vietnamese exports and APIs write them."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

from indexer.diacritics import fold

_DMY_RE = re.compile(
    r"^(\d{1,2})[/\-.](\d{1,2})[/\-.](\d{4}|\d{2})(?:[ T,]+(\d{1,2})[:hH](\d{1,2})?(?::(\d{1,2}))?(?:\.\d+)?"
    r"\s*(SA|CH|AM|PM)?)?$"
)
_ISO_RE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?)?$")
_TIME_FIRST_RE = re.compile(r"^(\d{1,2})[:hH](\d{2})(?::(\d{2}))?\s*(SA|CH|AM|PM)?[ ,]+(.+)$")
_WORDS_RE = re.compile(r"^(?:NGAY\s*)?(\d{1,2})\s*THANG\s*(\d{1,2})\s*NAM\s*(\d{4})$")
_EXCEL_EPOCH = datetime(1899, 12, 30)


class DateError(ValueError):
    pass


def _mk(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, ampm: str | None = None) -> datetime:
    if y < 100:
        y += 2000
    if ampm in {"CH", "PM"} and h < 12:
        h += 12
    elif ampm in {"SA", "AM"} and h == 12:
        h = 0
    try:
        return datetime(y, mo, d, h, mi, s)
    except ValueError:
        raise DateError("ngày không tồn tại") from None


def parse_vn_datetime(value: Any) -> datetime | None:
    """Parse a date as Vietnamese exports write it; None for an empty cell, :class:`DateError` if invalid.

    Accepts ``05/11/2024``, ``5-11-2024 08:31``, ``05.11.24``, ``05/11/2024 8h31``, ``08:31 05/11/2024``,
    ``05/11/2024 02:31:00 CH``, ``2024-11-05T08:31:00``, ``ngày 05 tháng 11 năm 2024``, Excel date cells and
    Excel serial numbers.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if 1 <= value < 2958466:
            return (_EXCEL_EPOCH + timedelta(days=float(value))).replace(microsecond=0)
        raise DateError("số ngày không hợp lệ")
    text = str(value).strip()
    if not text:
        return None
    t = fold(text).upper().replace("\u00a0", " ")
    t = re.sub(r"\s+", " ", t)
    m = _DMY_RE.match(t)
    if m:
        d, mo, y, h, mi, s, ampm = m.groups()
        return _mk(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0), ampm)
    m = _ISO_RE.match(t)
    if m:
        y, mo, d, h, mi, s = m.groups()
        return _mk(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0))
    m = _TIME_FIRST_RE.match(t)
    if m:
        h, mi, s, ampm, rest = m.groups()
        day = parse_vn_datetime(rest)
        if day is None:
            raise DateError("thiếu ngày")
        return _mk(day.year, day.month, day.day, int(h), int(mi), int(s or 0), ampm)
    m = _WORDS_RE.match(t)
    if m:
        d, mo, y = m.groups()
        return _mk(int(y), int(mo), int(d))
    if re.fullmatch(r"\d{5}(?:\.\d+)?", t):
        return parse_vn_datetime(float(t))
    raise DateError("không đúng định dạng ngày dd/mm/yyyy")
