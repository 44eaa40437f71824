"""Personal data helpers: masking for display and logs, and the Vietnamese mobile-number validator."""

from __future__ import annotations

import logging
import re
import unicodedata

__all__ = [
    "PiiLogFilter",
    "install_log_filter",
    "mask_name",
    "mask_phone",
    "mask_text",
    "normalize_mobile",
    "is_vn_mobile",
]

# Vietnamese mobile prefixes after the 2018 renumbering: 03x, 05x, 07x, 08x, 09x.
_MOBILE_RE = re.compile(r"^0(?:3[2-9]|5[25689]|7[06-9]|8[1-9]|9\d)\d{7}$")
_SEPARATORS_RE = re.compile(r"[\s.\-–—()]")

# Anything that looks like a phone number in free text: +84 / 84 / 0 then 8-10 more digits, with the
# spaces, dots and dashes people put between groups; not after "<digit>-", as inside a dated name
# such as an index version ("20261130-063828-226").
_PHONE_IN_TEXT_RE = re.compile(r"(?<![\d])(?<!\d-)(?:\+\s?84|84|0)(?:[\s.\-]?\d){8,10}(?![\d])")
# National ID numbers: the old 9-digit CMND and the 12-digit CCCD, also typed in groups ("034 092 001 234").
_ID_IN_TEXT_RE = re.compile(r"(?<![\d.\-])(?:\d{12}|\d{9}|\d{3}(?:[ .]\d{3}){3}|\d{4}(?:[ .]\d{4}){2})(?![\d])")


def mask_name(name: str | None) -> str:
    """``"Nguyễn Văn An"`` -> ``"Nguyễn V. A."``: the family name stays, the other words become initials."""
    if not name:
        return ""
    words = unicodedata.normalize("NFC", name).split()
    if not words:
        return ""
    if len(words) == 1:
        return words[0][0].upper() + "."
    initials = " ".join(w[0].upper() + "." for w in words[1:])
    return f"{words[0]} {initials}"


def mask_phone(phone: str | None) -> str:
    """``"0912345678"`` -> ``"09******78"``: the first two and the last two digits stay visible."""
    if not phone:
        return ""
    digits = re.sub(r"\D", "", phone)
    if len(digits) <= 4:
        return "*" * len(digits)
    return digits[:2] + "*" * (len(digits) - 4) + digits[-2:]


def normalize_mobile(raw: str | None) -> str | None:
    """A Vietnamese mobile number in the national form ``0912345678``, or None when it is not one.

    Accepts ``0912 345 678``, ``0912.345.678``, ``+84 912 345 678``, ``84912345678``, ``(+84) 912-345-678``.
    """
    if not raw:
        return None
    s = _SEPARATORS_RE.sub("", unicodedata.normalize("NFKC", raw).strip())
    if s.startswith("+84"):
        s = "0" + s[3:]
    elif s.startswith("84") and len(s) == 11:
        s = "0" + s[2:]
    elif s.startswith("0084"):
        s = "0" + s[4:]
    if s.startswith("00"):  # "+84 0912..." typed with the trunk zero
        s = s[1:]
    return s if _MOBILE_RE.match(s) else None


def is_vn_mobile(raw: str | None) -> bool:
    return normalize_mobile(raw) is not None


def format_mobile(phone: str) -> str:
    """``0912345678`` -> ``0912 345 678`` (for showing the citizen their own number)."""
    d = re.sub(r"\D", "", phone)
    return f"{d[:4]} {d[4:7]} {d[7:]}" if len(d) == 10 else phone


def mask_text(text: str) -> str:
    """Mask every phone-like number and 9/12-digit ID number in free text."""
    if not text:
        return text
    text = _ID_IN_TEXT_RE.sub(lambda m: _mask_id(m.group(0)), text)
    return _PHONE_IN_TEXT_RE.sub(lambda m: mask_phone(m.group(0)), text)


def _mask_id(raw: str) -> str:
    digits = re.sub(r"\D", "", raw)
    return digits[:2] + "*" * (len(digits) - 4) + digits[-2:]


_FORMATTER = logging.Formatter()


class PiiLogFilter(logging.Filter):
    """Masks phone numbers and ID numbers in every log record that passes through it.

    The message is formatted first (``msg % args``), then masked, so numbers passed as arguments are
    caught too. Attach it to handlers (``install_log_filter()``) so records of every logger are covered.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it for logging to report
            return True
        masked = mask_text(message)
        if masked != message or record.args:
            record.msg = masked
            record.args = None
        if record.exc_info and not record.exc_text:
            # Format the traceback now (formatters reuse exc_text), so exception messages are masked too.
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True


def install_log_filter(logger: logging.Logger | None = None) -> PiiLogFilter:
    """Attach one ``PiiLogFilter`` to every handler of ``logger`` (default: the root logger)."""
    target = logger or logging.getLogger()
    flt = PiiLogFilter()
    for handler in target.handlers:
        if not any(isinstance(f, PiiLogFilter) for f in handler.filters):
            handler.addFilter(flt)
    if not any(isinstance(f, PiiLogFilter) for f in target.filters):
        target.addFilter(flt)
    return flt
