"""Pháp điển topic pages: one page gathers Articles of several documents.

Each Article of a page is headed by its pháp điển code and followed by its source::

    Điều 6.5.PL.1. Phạm vi điều chỉnh

    (Điều 1 Pháp lệnh số 02/2020/UBTVQH14 Ưu đãi người có công với cách mạng ngày 09/12/2020 của
    Ủy ban thường vụ Quốc hội, có hiệu lực thi hành kể từ ngày 01/07/2021)

That source line is the citation (Điều 1 of 02/2020/UBTVQH14) and the date the Article holds from.
Notes such as "(Điều này có nội dung liên quan đến ...)" are the compiler's cross-references, not law,
and are dropped. The table of contents at the end of a page ("## Danh sách điều khoản") repeats the
Articles' first lines and is ignored.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from indexer.documents.numbers import DOC_TYPES, canonical_number
from indexer.documents.structure import Article, clean_line

CODE = r"\d+\.\d+\.[A-ZĐ]{1,3}\.[\d.]*\d"
HEADING_RE = re.compile(rf"^Điều ({CODE})\.\s*(.*)$")
_GLUED_RE = re.compile(rf"(?<=\S)(Điều {CODE}\. )")
SOURCE_RE = re.compile(
    r"^\((?:Điều|Điều)\s+(?P<art>\d+[a-zđ]?)\s+(?:của\s+)?(?P<type>" + "|".join(DOC_TYPES) + r")\s+"
    r"(?:số\s+)?(?P<number>[^\s,]+(?:\s?-\s?[A-ZĐa-z0-9]+)*)(?P<rest>.*?),?\s*có hiệu lực(?:\s+thi hành)?"
    r"(?:\s+kể)?\s+từ\s+ngày\s+(?P<eff>\d{1,2}/\d{1,2}/\d{4})\s*\)?\s*$"
)
_REST_RE = re.compile(r"^\s*(?P<title>.*?)\s*(?:ngày\s+(?P<signed>\d{1,2}/\d{1,2}/\d{4}))?"
                      r"(?:\s+của\s+(?P<issuer>[^,]+))?\s*$")
NOTE_RE = re.compile(r"^\((?:Điều|Chương|Mục|Khoản|Điểm) này có nội dung liên quan")
_INLINE_NOTE_RE = re.compile(r"\((?:Điều|Chương|Mục|Khoản|Điểm) này có nội dung liên quan[^()]*(?:\([^()]*\)[^()]*)*\)")


def is_phapdien_page(text: str) -> bool:
    """True for a pháp điển topic page (Articles headed by a pháp điển code with a source line)."""
    return len(re.findall(rf"(?m)^Điều {CODE}\. ", text[:200000])) >= 2


def _date(s: str | None) -> dt.date | None:
    if not s:
        return None
    d, m, y = (int(x) for x in s.split("/"))
    try:
        return dt.date(y, m, d)
    except ValueError:
        return None


@dataclass
class SourceDoc:
    """What the source lines of a page say about one document."""

    number: str
    type: str
    title: str = ""
    signed: dt.date | None = None
    issuer: str = ""
    effective: set[dt.date] = field(default_factory=set)
    articles: int = 0


@dataclass
class PhapDienPage:
    title: str
    articles: list[Article]
    documents: dict[str, SourceDoc]
    without_source: list[str]
    """Pháp điển codes of Articles whose source line is missing (not attributable: not indexed)."""


def _body(text: str) -> tuple[str, str]:
    title = ""
    m = re.search(r"(?m)^title:\s*(.+)$", text[:2000])
    if m:
        title = m.group(1).strip().strip('"')
    start = text.find("## VĂN BẢN")
    end = text.find("## Danh sách điều khoản")
    body = text[start if start >= 0 else 0: end if end >= 0 else len(text)]
    return title, body


def parse_page(text: str, source_file: str = "") -> PhapDienPage:
    title, body = _body(text)
    body = _GLUED_RE.sub(r"\n\n\1", body)
    articles: list[Article] = []
    docs: dict[str, SourceDoc] = {}
    missing: list[str] = []
    cur: Article | None = None
    expect_source = False
    for raw in body.splitlines():
        line = clean_line(raw)
        if not line:
            continue
        m = HEADING_RE.match(line)
        if m:
            cur = Article("", m.group(2).strip(), code=f"Điều {m.group(1)}", order=len(articles))
            articles.append(cur)
            expect_source = True
            continue
        if cur is None:
            continue
        if expect_source:
            expect_source = False
            sm = SOURCE_RE.match(line)
            if sm:
                number = canonical_number(sm.group("number"))
                cur.label = f"Điều {sm.group('art')}"
                cur.document = number
                eff = _date(sm.group("eff"))
                cur.effective = eff.isoformat() if eff else None
                d = docs.setdefault(number, SourceDoc(number, sm.group("type")))
                d.articles += 1
                if eff:
                    d.effective.add(eff)
                rest = sm.group("rest").strip(" ,")
                if rest and not d.title:
                    rm = _REST_RE.match(rest)
                    if rm:
                        d.title = rm.group("title").strip(" ,")
                        d.signed = _date(rm.group("signed"))
                        d.issuer = (rm.group("issuer") or "").strip()
                continue
        if NOTE_RE.match(line) or re.match(r"^(?:Chương|Mục)\s+[IVXLC\d]+\b", line) and len(line) < 200 \
                and not cur.lines:
            continue
        if re.match(r"^(?:Chương|CHƯƠNG)\s+[IVXLC]+$", line) or (line.isupper() and len(line) < 200):
            continue  # the đề mục's own chapter headings
        line = _INLINE_NOTE_RE.sub("", line).strip()
        if line:
            cur.lines.append(line)
    _add_toc_only(text, articles)
    out = []
    for a in articles:
        if a.document is None:
            missing.append(a.code or "?")
        else:
            out.append(a)
    return PhapDienPage(title, out, docs, missing)


def _prefix(code: str) -> tuple[str, str]:
    """``Điều 20.2.NĐ.3.12`` -> (``20.2.NĐ.3``, ``12``)."""
    c = code.removeprefix("Điều ").strip()
    head, _, last = c.rpartition(".")
    return head, last


def _add_toc_only(text: str, articles: list[Article]) -> None:
    """Articles that a page lists only in its table of contents (the page's text was cut short): the
    title and first line are kept, attributed through the code prefix learnt from the full Articles
    (``20.2.LQ`` is Bộ luật 45/2019/QH14 and ``20.2.LQ.170`` its Điều 170)."""
    i = text.find("## Danh sách điều khoản")
    if i < 0:
        return
    seen = {a.code for a in articles}
    prefixes: dict[str, tuple[str, dt.date | None]] = {}
    for a in articles:
        if a.document and a.code:
            head, last = _prefix(a.code)
            if a.label == f"Điều {last}":
                eff = dt.date.fromisoformat(a.effective) if a.effective else None
                prev = prefixes.get(head)
                prefixes[head] = (a.document, max(filter(None, [eff, prev[1] if prev else None]), default=None))
    for raw in text[i:].splitlines():
        line = clean_line(raw)
        m = HEADING_RE.match(line)
        if not m or f"Điều {m.group(1)}" in seen:
            continue
        code = f"Điều {m.group(1)}"
        seen.add(code)
        head, last = _prefix(code)
        if head not in prefixes:
            continue
        doc, eff = prefixes[head]
        rest = m.group(2).strip()
        cut = re.search(r"\s(?=1\.\s|a\)\s)", rest)
        title, first = (rest[: cut.start()], rest[cut.end():]) if cut else (rest, "")
        art = Article(f"Điều {last}", title.strip(), lines=[first] if first else [], code=code,
                      document=doc, effective=eff.isoformat() if eff else None, order=len(articles), partial=True)
        articles.append(art)
