"""Detect a document's number, type, title, issuer and dates from its text.

A Vietnamese legal document states them in a fixed order at its top::

    CHÍNH PHỦ                      CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM
    Số: 55/2023/NĐ-CP              Hà Nội, ngày 21 tháng 7 năm 2023
    NGHỊ ĐỊNH
    SỬA ĐỔI, BỔ SUNG MỘT SỐ ĐIỀU ...

and its effective date in its last articles ("có hiệu lực thi hành kể từ ngày ..."). A consolidated text
(văn bản hợp nhất, ``4804/VBHN-BLĐTBXH``) consolidates another document: its Articles are that document's
Articles, so the metadata names the consolidated document and keeps the VBHN number as an alias.
Anything not found is left empty; the importer warns, and command-line flags override.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from indexer.documents.numbers import DOC_TYPES, canonical_number, type_from_number

_DATE_WORDS = re.compile(r"ngày\s+(\d{1,2})\s+tháng\s+(\d{1,2})\s+năm\s+(\d{4})", re.I)
_DATE_SLASH = re.compile(r"\b(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})\b")
_NUMBER_LINE = re.compile(r"(?:^|\|)\s*(?:[A-ZÀ-Ỹa-zà-ỹ ]{0,40})?Số(?:\s*hiệu)?\s*:?\s*([0-9]{1,5}\s*/\s*[^\s|,;]+)",
                          re.M)
_EFFECTIVE = re.compile(
    r"có hiệu lực(?: thi hành)?(?: kể)?(?: từ| kể từ)? ngày\s+(\d{1,2})\s+tháng\s+(\d{1,2})\s+năm\s+(\d{4})"
    r"|có hiệu lực(?: thi hành)?(?: kể)?(?: từ| kể từ)? ngày\s+(\d{1,2})/(\d{1,2})/(\d{4})", re.I)
_CONSOLIDATED_DOC = re.compile(
    r"(" + "|".join(DOC_TYPES) + r")\s+số\s+(\S+?)\s+ngày\s+(\d{1,2})\s+tháng\s+(\d{1,2})\s+năm\s+(\d{4})", re.I)
_EFFECTIVE_WORDS = re.compile(
    r"có hiệu lực(?: thi hành)?(?: kể)? từ ngày\s+(\d{1,2})\s+tháng\s+(\d{1,2})\s+năm\s+(\d{4})", re.I)
ISSUERS = {
    "ỦY BAN THƯỜNG VỤ QUỐC HỘI": "Ủy ban Thường vụ Quốc hội",
    "UỶ BAN THƯỜNG VỤ QUỐC HỘI": "Ủy ban Thường vụ Quốc hội",
    "THỦ TƯỚNG CHÍNH PHỦ": "Thủ tướng Chính phủ",
    "CHÍNH PHỦ": "Chính phủ",
    "QUỐC HỘI": "Quốc hội",
    "BỘ LAO ĐỘNG - THƯƠNG BINH VÀ XÃ HỘI": "Bộ Lao động - Thương binh và Xã hội",
    "BỘ LAO ĐỘNG – THƯƠNG BINH VÀ XÃ HỘI": "Bộ Lao động - Thương binh và Xã hội",
    "BỘ NỘI VỤ": "Bộ Nội vụ",
    "BỘ TÀI CHÍNH": "Bộ Tài chính",
    "BỘ Y TẾ": "Bộ Y tế",
    "BỘ QUỐC PHÒNG": "Bộ Quốc phòng",
    "BỘ CÔNG AN": "Bộ Công an",
    "SỞ LAO ĐỘNG - THƯƠNG BINH VÀ XÃ HỘI": "Sở Lao động - Thương binh và Xã hội",
    "ỦY BAN NHÂN DÂN": "Ủy ban nhân dân",
    "UỶ BAN NHÂN DÂN": "Ủy ban nhân dân",
}


@dataclass
class DocMeta:
    number: str = ""
    type: str = ""
    title: str = ""
    issuer: str = ""
    signed: dt.date | None = None
    effective: dt.date | None = None
    aliases: list[str] = field(default_factory=list)
    text_date: dt.date | None = None
    """For a consolidated text: the date of the latest amendment it includes (what its wording holds
    from); otherwise the effective date."""
    warnings: list[str] = field(default_factory=list)


def _date(d: str, m: str, y: str) -> dt.date | None:
    try:
        return dt.date(int(y), int(m), int(d))
    except ValueError:
        return None


def parse_date(value: Any) -> dt.date | None:
    """A date from YAML (date, ``2021-07-01``, ``01-07-2021``, ``01/07/2021``) or None."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    s = str(value).strip()
    m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", s)
    if m:
        return _date(m.group(3), m.group(2), m.group(1))
    m = re.fullmatch(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})", s)
    if m:
        return _date(m.group(1), m.group(2), m.group(3))
    return None


def _sentence_case(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip(" .:")
    letters = [c for c in text if c.isalpha()]
    if letters and sum(c.isupper() for c in letters) / len(letters) > 0.8:
        text = text.lower()
        text = re.sub(r"\bviệt nam\b", "Việt Nam", text)
        text = re.sub(r"\b(\d+/\d{4}/)([a-zđ\-0-9]+)", lambda m: m.group(1) + m.group(2).upper(), text)
        return text[:1].upper() + text[1:]
    return text


def _head_lines(text: str, n: int = 60) -> list[str]:
    out = []
    for raw in text.splitlines():
        line = raw.strip().strip("#*_ ").strip()
        if line:
            out.append(line)
        if len(out) >= n:
            break
    return out


def _issuer(lines: list[str]) -> str:
    for line in lines[:12]:
        cells = [c.strip() for c in line.strip("|").split("|")] if "|" in line else [line]
        for cell in cells:
            up = re.sub(r"\s*-{3,}.*$", "", cell).strip().upper()
            for key, name in ISSUERS.items():
                if up.startswith(key):
                    rest = cell[len(key):].strip(" -")
                    rest = re.sub(r"-{3,}.*$", "", rest).strip()
                    if name == "Ủy ban nhân dân" and rest:
                        return f"{name} {rest.title()}"
                    return name
    return ""


def detect(text: str, front: dict[str, Any] | None = None, file_name: str = "") -> DocMeta:
    """Detect the metadata of one document. ``front`` (a Markdown front matter) wins where it speaks."""
    front = front or {}
    meta = DocMeta()
    lines = _head_lines(text)
    head = "\n".join(lines)

    # Number: "Số: 55/2023/NĐ-CP" (possibly inside the header table), else "Luật số 45/2019/QH14".
    number = ""
    m = _NUMBER_LINE.search(head)
    if m:
        number = canonical_number(m.group(1))
    if not number:
        m = re.search(r"(?:" + "|".join(DOC_TYPES) + r")\s+số\s*:?\s*(\d{1,5}/\S+)", head)
        if m:
            number = canonical_number(m.group(1))
    front_number = front.get("number") or front.get("so_hieu")
    if front_number:
        number = canonical_number(str(front_number))
    meta.number = number

    # Type: the first line that is only a document type ("NGHỊ ĐỊNH"), else implied by the number.
    for line in lines:
        clean = line.strip(" .")
        for t in DOC_TYPES:
            if clean.upper() == t.upper():
                meta.type = t
                break
        if meta.type:
            break
    meta.type = str(front.get("type") or front.get("loai_van_ban") or meta.type or
                    (type_from_number(number) if number else "") or "")

    # Title: the upper-case lines right after the type line.
    if meta.type:
        idx = next((i for i, ln in enumerate(lines) if ln.strip(" .").upper() == meta.type.upper()), None)
        if idx is not None:
            parts = []
            for ln in lines[idx + 1: idx + 6]:
                letters = [c for c in ln if c.isalpha()]
                if letters and sum(c.isupper() for c in letters) / len(letters) > 0.8 and len(ln) < 400:
                    parts.append(ln)
                elif parts:
                    break
            meta.title = _sentence_case(" ".join(parts))
    if front.get("title"):
        meta.title = str(front["title"]).strip().strip('"')

    meta.issuer = str(front.get("co_quan_ban_hanh") or front.get("issuer") or _issuer(lines))

    m = _DATE_WORDS.search(head)
    meta.signed = parse_date(front.get("issued") or front.get("signed") or front.get("ngay_ban_hanh")) \
        or (_date(*m.groups()) if m else None)

    eff = None
    for em in _EFFECTIVE.finditer(text[-20000:] if len(text) > 20000 else text):
        g = em.groups()
        eff = _date(*g[:3]) if g[0] else _date(*g[3:])
        break
    meta.effective = parse_date(front.get("effective") or front.get("ngay_hieu_luc")) or eff
    meta.text_date = meta.effective

    # A consolidated text: take the consolidated document's identity; keep the VBHN number as alias.
    if "VBHN" in meta.number.upper():
        para = next((p for p in re.split(r"\n\s*\n", text[:8000]) if re.search(r"sửa đổi, bổ sung bởi", p)), "")
        cm = _CONSOLIDATED_DOC.search(para)
        if cm:
            vbhn = meta.number
            meta.aliases = [vbhn]
            meta.type = next(t for t in DOC_TYPES if t.lower() == cm.group(1).lower())
            meta.number = canonical_number(cm.group(2))
            meta.signed = _date(cm.group(3), cm.group(4), cm.group(5))
            eff_m = _EFFECTIVE_WORDS.search(para)
            meta.effective = _date(*eff_m.groups()) if eff_m else None
            amend_dates = [d for d in (_date(*x) for x in _EFFECTIVE_WORDS.findall(text[:8000])) if d]
            front_eff = parse_date(front.get("effective"))
            meta.text_date = max(amend_dates + ([front_eff] if front_eff else []), default=meta.effective)
            t = re.sub(r"^Văn bản hợp nhất số \S+\s*-\s*", "", meta.title)
            meta.title = t[:1].upper() + t[1:] if t else t
    if not meta.number:
        meta.warnings.append(
            f"không tìm thấy số hiệu văn bản trong {file_name or 'tệp'}: nhập theo tên tệp "
            "(document number not found; imported under the file name — set it with --number)")
    if not meta.effective:
        meta.warnings.append("không tìm thấy ngày hiệu lực (effective date not found — set it with --effective)")
    return meta
