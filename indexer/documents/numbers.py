"""Document numbers and citations.

A Vietnamese legal document is named by its number (``02/2020/UBTVQH14``, ``75/2021/NĐ-CP``,
``4804/VBHN-BLĐTBXH``). The same number is written in many ways: ``NĐ``/``ND``/``NÐ`` (the Icelandic
Ð), ``TT- BVHTTDL`` with a stray space, ``02_2020_UBTVQH14`` in file names. ``canonical_number`` gives
the form the catalogue uses; ``number_key`` the accent-free, case-free key used to compare numbers.
"""

from __future__ import annotations

import re
import unicodedata

from indexer.diacritics import fold

DOC_TYPES = (
    "Bộ luật", "Luật", "Pháp lệnh", "Nghị quyết liên tịch", "Nghị quyết", "Nghị định",
    "Thông tư liên tịch", "Thông tư", "Quyết định", "Chỉ thị", "Văn bản hợp nhất", "Công văn",
    "Hướng dẫn", "Kế hoạch", "Thông báo",
)
"""Types of legal and administrative documents, longest first where one is a prefix of another."""

_SHORT_TYPES = {"NĐ": "Nghị định", "TT": "Thông tư", "QĐ": "Quyết định", "TTLT": "Thông tư liên tịch",
                "NQ": "Nghị quyết", "CT": "Chỉ thị", "VBHN": "Văn bản hợp nhất", "PL": "Pháp lệnh"}

# A number: digits, "/", year (optional), "/", issuer code with letters, digits and hyphens.
NUMBER_RE = re.compile(
    r"\b(\d{1,5}[a-z]?)\s*/\s*(?:(\d{4})\s*/\s*)?((?:[A-ZĐÐa-zđ]{1,12}\d{0,2})(?:\s?-\s?[A-ZĐÐa-zđ0-9]{1,12}){0,5})",
)
_FILE_NUMBER_RE = re.compile(r"^(\d{1,5})_(\d{4})_([A-Za-zĐđÐ0-9_]+)$")


def _clean(text: str) -> str:
    return unicodedata.normalize("NFC", text).replace("Ð", "Đ").replace("ð", "đ")


def canonical_number(raw: str) -> str:
    """``02_2020_UBTVQH14`` -> ``02/2020/UBTVQH14``; ``75/2021/ND-CP`` -> ``75/2021/NĐ-CP``;
    ``4804_2024_VBHN_BLĐTBXH`` -> ``4804/VBHN-BLĐTBXH`` (consolidated texts carry no year)."""
    s = _clean(raw).strip().strip(".,;:()")
    m = _FILE_NUMBER_RE.match(s)
    if m:
        num, year, rest = m.groups()
        parts = rest.split("_")
        if parts[0].upper() == "VBHN":
            s = f"{num}/VBHN-{'-'.join(parts[1:])}"
        else:
            s = f"{num}/{year}/{'-'.join(parts)}"
    s = re.sub(r"\s*([/-])\s*", r"\1", s)
    head, _, tail = s.rpartition("/")
    if not head:
        return s
    tail = tail.upper().replace("ND-", "NĐ-").replace("QD-", "QĐ-")
    tail = re.sub(r"BLDTBXH", "BLĐTBXH", tail)
    tail = re.sub(r"BGDDT", "BGDĐT", tail)
    tail = re.sub(r"(?<=-)TTG$", "TTg", tail)
    tail = tail.replace("-TTG", "-TTg")
    return f"{head}/{tail}"


def number_key(number: str) -> str:
    """Accent- and case-free key: ``75/2021/NĐ-CP`` and ``75/2021/nd-cp`` compare equal."""
    return re.sub(r"\s+", "", fold(_clean(number))).upper()


def find_numbers(text: str) -> list[str]:
    """Every document number written in ``text``, canonical, in order of appearance."""
    out = []
    for m in NUMBER_RE.finditer(_clean(text)):
        num, year, code = m.groups()
        if not re.search(r"[A-Za-zĐđ]{2,}", code):
            continue  # a date or a ratio, not a document number
        out.append(canonical_number(f"{num}/{year}/{code}" if year else f"{num}/{code}"))
    return out


def type_from_number(number: str) -> str | None:
    """The document type implied by the number's code: ``NĐ-CP`` -> Nghị định."""
    code = number.rsplit("/", 1)[-1]
    first = code.split("-", 1)[0].upper()
    if first in _SHORT_TYPES:
        return _SHORT_TYPES[first]
    if re.fullmatch(r"QH\d+", first):
        return "Luật"
    if re.fullmatch(r"UBTVQH\d+", first):
        return "Pháp lệnh"
    return None


def short_article(article: str) -> str:
    """Normalise an article label: ``điều 24`` / ``Điều 24.`` -> ``Điều 24``; ``phụ lục ii`` -> ``Phụ lục II``."""
    a = _clean(article).strip().rstrip(".")
    m = re.match(r"(?i)^điều\s+(\d+[a-zđ]?)$", a)
    if m:
        return f"Điều {m.group(1).lower()}"
    m = re.match(r"(?i)^phụ\s+lục(?:\s+(\S+))?$", a)
    if m:
        return f"Phụ lục {m.group(1).upper()}" if m.group(1) else "Phụ lục"
    return a


def citation(document_type: str, number: str, article: str = "", clause: str | None = None,
             point: str | None = None, row: str | None = None) -> str:
    """``khoản 1 Điều 24 Pháp lệnh 02/2020/UBTVQH14``; ``điểm a khoản 2 Điều 5 ...``; ``Phụ lục II ...``."""
    parts = []
    if row:
        parts.append(f"mục {row}")
    if point:
        parts.append(f"điểm {point}")
    if clause:
        parts.append(f"khoản {clause}")
    if article:
        parts.append(article)
    doc = f"{document_type} {number}".strip() if document_type else number
    parts.append(doc)
    return " ".join(parts)


CITATION_RE = re.compile(
    r"(?i)(?:điểm\s+(?P<point>[a-zđ])\s+)?(?:khoản\s+(?P<clause>\d+)\s+)?"
    r"(?P<article>điều\s+\d+[a-zđ]?|phụ\s+lục\s+[ivxlc\d]+)"
    r"(?:\s+(?:của\s+)?(?P<type>" + "|".join(DOC_TYPES) + r"))?(?:\s+số)?\s+(?P<number>\S+/\S+)",
)


def parse_citation(text: str) -> dict[str, str | None] | None:
    """The parts of a citation: {point, clause, article, type, number}, or None if there is none."""
    m = CITATION_RE.search(_clean(text))
    if not m:
        return None
    d = m.groupdict()
    return {
        "point": d["point"].lower() if d["point"] else None,
        "clause": d["clause"],
        "article": short_article(d["article"]),
        "type": d["type"],
        "number": canonical_number(d["number"]),
    }


_PARENS = re.compile(r"\(([^)]*)\)")
_SUBDIVISION = re.compile(r"(?i)\b(?:khoản|điểm|mục)\s+\w+")
_ARTICLE_RANGE = re.compile(r"(\d+)\s*(?:đến|–|-)\s*(\d+)")
MAX_ARTICLE_RANGE = 60
"""A range wider than this ("Điều 1 đến 500") is read as its two ends only."""


def cited_articles(basis: str) -> list[tuple[str, frozenset[str] | None]]:
    """The documents a legal-basis line cites, each with the Articles (and annexes) it names, as
    :func:`short_article` labels, or None when it names none: ``Pháp lệnh … số 02/2020/UBTVQH14 (Điều 8 đến
    10)`` -> ``[("02/2020/UBTVQH14", {"Điều 8", "Điều 9", "Điều 10"})]``; ``Nghị định 131/2021/NĐ-CP (Điều 170
    khoản 14 điểm a)`` -> ``{"Điều 170"}``; ``(Phụ lục I)`` -> ``{"Phụ lục I"}``. What is in parentheses
    belongs to the last number before them."""
    text = _clean(basis)
    out: list[tuple[str, frozenset[str] | None]] = []
    pos = 0
    for m in _PARENS.finditer(text):
        nums = find_numbers(text[pos:m.start()])
        inner = m.group(1)
        arts: set[str] = {f"Phụ lục {r.upper()}" for r in re.findall(r"(?i)phụ\s+lục\s+([ivxlc]+)\b", inner)}
        if re.search(r"(?i)điều", inner):
            inner = _SUBDIVISION.sub(" ", re.sub(r"(?i)phụ\s+lục\s+\w+", " ", inner))
            for a, b in _ARTICLE_RANGE.findall(inner):
                lo, hi = int(a), int(b)
                if 0 < hi - lo <= MAX_ARTICLE_RANGE:
                    arts.update(f"Điều {i}" for i in range(lo, hi + 1))
            arts.update(f"Điều {n}" for n in re.findall(r"\d+", inner))
        out += [(n, None) for n in nums[:-1]]
        if nums:
            out.append((nums[-1], frozenset(arts) if arts else None))
        pos = m.end()
    out += [(n, None) for n in find_numbers(text[pos:])]
    return out
