"""Receipt numbers: finding one in a citizen's message and the key dossiers are stored under."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from bot.config import DEFAULT_RECEIPT_PATTERN
from indexer.diacritics import fold

_DASHES_RE = re.compile(r"[\u2010\u2011\u2012\u2013\u2014\u2015\u2212\uFE58\uFE63\uFF0D_]")
_SPACED_PREFIX_RE = re.compile(
    r"(?<![A-Z0-9.])([A-Z][A-Z0-9]{0,5})[ \t]+(\d{1,6})(?=[ \t]*[-.]?[ \t]*\d{6}[ \t]*[-.]?[ \t]*\d{3,6}(?!\d))")
"""``H41 22 241105 0012``: the agency code typed with a space instead of its dot."""
_SPACED_SEP_RE = re.compile(r"(?<=\d)[ \t]*([-.])[ \t]*(?=[A-Z0-9])|(?<=[A-Z0-9])[ \t]*([-.])[ \t]*(?=\d)")


def receipt_key(receipt: str) -> str:
    """Upper-case letters and digits only: ``h41.22 – 241105-0012`` -> ``H4122241105 0012`` without spaces."""
    return re.sub(r"[^A-Z0-9]", "", fold(unicodedata.normalize("NFKC", receipt)).upper())


def normalize_receipt_text(text: str) -> str:
    """Upper-case, every dash variant as ``-``, spaces around dashes/dots between digits removed, an agency
    code typed with a space (``H41 22 …``) joined with its dot."""
    t = unicodedata.normalize("NFKC", text).upper()
    t = _DASHES_RE.sub("-", t)
    t = _SPACED_PREFIX_RE.sub(r"\1.\2", t)
    return _SPACED_SEP_RE.sub(lambda m: m.group(1) or m.group(2), t)


@lru_cache(maxsize=16)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def find_receipt(text: str | None, pattern: str | None = None) -> str | None:
    """The first receipt number in ``text`` (normalised: upper-case, ``-`` dashes), or None.

    ``pattern`` is applied to the normalised text; if it has a group named ``receipt`` that group is used.
    """
    if not text:
        return None
    rx = _compiled(pattern or DEFAULT_RECEIPT_PATTERN)
    m = rx.search(normalize_receipt_text(text))
    if m is None:
        return None
    value = m.group("receipt") if "receipt" in rx.groupindex else m.group(0)
    return re.sub(r"\s+", "-", value.strip())
