"""Split the text of a legal document by its structure: Phần, Chương, Mục, Điều, Khoản, Điểm, and the
annexes (Phụ lục) with their tables.

The input is the Markdown text a converter produced (or a shipped ``.md``). The output is a list of
``Article`` blocks: each Điều (or annex) with its heading path and its body lines. ``passages`` then
cuts an Article into clause-sized passages, one per table row for tables.

Quoted text (an amending decree quoting the new wording of an article) is not structure: a line that
opens a quotation ("“Điều 3. ...") and everything up to its closing quote belongs to the clause that
quotes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_MD_DECOR = re.compile(r"^[#>\s]*(?:\*\*|__)?\s*")
_MD_TRAIL = re.compile(r"\s*(?:\*\*|__)\s*$")
PART_RE = re.compile(r"(?i)^phần\s+(thứ\s+\S+|[IVXLC]+|\d+)\b\.?\s*(.*)$")
CHAPTER_RE = re.compile(r"^(?:Chương|CHƯƠNG)\s+([IVXLC]+|\d+)\b\.?\s*(.*)$")
SECTION_RE = re.compile(r"^(?:Mục|MỤC)\s+(\d+|[IVXLC]+)\b\.?\s*(.*)$")
ARTICLE_RE = re.compile(r"^(?:Điều|ĐIỀU)\s+(\d+[a-zđ]?)\s*[.:]\s*(.*)$")
ARTICLE_BARE_RE = re.compile(r"^(?:Điều|ĐIỀU)\s+(\d+[a-zđ]?)\s*$")
ANNEX_RE = re.compile(r"^(?:PHỤ LỤC|Phụ lục)(?:\s+(?:số\s+)?([IVXLC]+|\d+[a-z]?))?\s*[.:]?\s*(.*)$")
CLAUSE_RE = re.compile(r"^(\d{1,3})\.\s+(\S.*)$")
POINT_RE = re.compile(r"^([a-zđ])\)\s+(\S.*)$")
TABLE_LINE_RE = re.compile(r"^\s*\|.*\|\s*$")
FOOTNOTE_RE = re.compile(r"\[\d{1,3}\]")
SIGNATURE_HINTS = ("nơi nhận", "tm. ", "kt. bộ trưởng", "xác thực văn bản hợp nhất", "kt. thủ tướng",
                   "tm. chính phủ", "tm. ủy ban", "cộng hòa xã hội chủ nghĩa việt nam")


@dataclass
class Article:
    label: str
    """``Điều 24``, ``Phụ lục II``, or ``""`` for text outside any article (a procedure's sections)."""
    title: str
    lines: list[str] = field(default_factory=list)
    part: str = ""
    chapter: str = ""
    section: str = ""
    order: int = 0
    document: str | None = None
    """Set when one file holds several documents (a pháp điển page); else the file's document."""
    effective: str | None = None
    """ISO date the article holds from, when the source says so (pháp điển)."""
    partial: bool = False
    """Only the title and first line are known (a pháp điển page's table of contents)."""
    code: str | None = None
    """The pháp điển code (``Điều 6.5.PL.1``) when the article came from a pháp điển page."""

    @property
    def is_annex(self) -> bool:
        return self.label.startswith("Phụ lục")

    @property
    def heading(self) -> str:
        return f"{self.label}. {self.title}".strip(". ") if self.label else self.title


def _is_marker(line: str) -> bool:
    return bool(ARTICLE_RE.match(line) or ARTICLE_BARE_RE.match(line) or CHAPTER_RE.match(line)
                or SECTION_RE.match(line) or line.startswith("PHỤ LỤC") or PART_RE.match(line))


def clean_line(line: str) -> str:
    line = FOOTNOTE_RE.sub("", line.replace("\u00a0", " ")).rstrip()
    if TABLE_LINE_RE.match(line):
        return line.strip()
    line = _MD_DECOR.sub("", line)
    line = _MD_TRAIL.sub("", line)
    return re.sub(r"\s+", " ", line).strip()


def _is_upper_title(text: str) -> bool:
    letters = [c for c in FOOTNOTE_RE.sub("", text).split("(", 1)[0] if c.isalpha()]
    return bool(letters) and sum(c.isupper() for c in letters) / len(letters) > 0.8


class _Quote:
    """Tracks a quotation that spans lines (amended wording quoted by an amending decree)."""

    def __init__(self) -> None:
        self.open = False

    def feed(self, line: str) -> bool:
        """True if ``line`` is inside (or opens/closes) a quotation."""
        starts = line.startswith(("“", '"', "''"))
        ends = bool(re.search(r"[”\"]\s*[.;,]?\s*(?:\[\d+\])?$", line))
        if self.open:
            if ends:
                self.open = False
            return True
        if starts:
            self.open = not ends
            return True
        return False


def split_structure(text: str) -> tuple[list[str], list[Article]]:
    """Split a document into its preamble lines and its articles/annexes in order."""
    raw_lines = text.splitlines()
    preamble: list[str] = []
    articles: list[Article] = []
    part = chapter = section = ""
    cur: Article | None = None
    quote = _Quote()
    trailing = False
    pending: str | None = None  # "chapter" / "section" / "part" / "annex" / "article" waiting for a title
    i = 0
    n = len(raw_lines)
    while i < n:
        raw = raw_lines[i]
        line = clean_line(raw)
        i += 1
        if not line:
            continue
        if raw.startswith("#") and cur is not None and not _is_marker(line) and not pending \
                and not quote.open:
            # A Markdown heading that is not legal structure ends the articles ("## GHI CHÚ").
            cur = None
            trailing = True
        if trailing and cur is None and not _is_marker(line):
            continue
        trailing = False
        if TABLE_LINE_RE.match(line):
            pending = None
            (cur.lines if cur else preamble).append(line)
            continue
        in_quote = quote.feed(line) if cur is not None else False
        if in_quote:
            cur.lines.append(line)  # type: ignore[union-attr]
            continue
        if pending and not ARTICLE_RE.match(line) and not CHAPTER_RE.match(line):
            # The title of a heading given on its own line ("Chương I" then "NHỮNG QUY ĐỊNH CHUNG").
            kind, pending = pending, None
            if kind == "annex" and cur is not None:
                if _is_upper_title(line) or line.startswith("(") or len(line) < 80 and not cur.title:
                    cur.title = FOOTNOTE_RE.sub("", f"{cur.title} {line}").strip()
                    pending = "annex"
                    continue
            elif kind == "article" and cur is not None and not CLAUSE_RE.match(line):
                cur.title = line
                continue
            elif kind in ("chapter", "section", "part") and (_is_upper_title(line) or len(line) < 160) \
                    and not CLAUSE_RE.match(line):
                if kind == "chapter":
                    chapter = f"{chapter} {line}"
                elif kind == "section":
                    section = f"{section} {line}"
                else:
                    part = f"{part} {line}"
                continue
        m = ARTICLE_RE.match(line) or ARTICLE_BARE_RE.match(line)
        if m:
            title = m.group(2).strip() if m.lastindex and m.lastindex >= 2 else ""
            cur = Article(f"Điều {m.group(1)}", FOOTNOTE_RE.sub("", title).strip(), part=part,
                          chapter=chapter, section=section, order=len(articles))
            articles.append(cur)
            pending = None if title else "article"
            continue
        m = ANNEX_RE.match(line)
        if m and (line.startswith("PHỤ LỤC") or len(line) <= 24):
            label = f"Phụ lục {m.group(1).upper()}" if m.group(1) else "Phụ lục"
            cur = Article(label, FOOTNOTE_RE.sub("", m.group(2) or "").strip(), order=len(articles))
            articles.append(cur)
            part = chapter = section = ""
            pending = "annex"
            continue
        m = CHAPTER_RE.match(line)
        if m and (not m.group(2) or _is_upper_title(m.group(2)) or len(m.group(2)) < 120):
            chapter = f"Chương {m.group(1)}" + (f" {m.group(2)}" if m.group(2) else "")
            section = ""
            pending = None if m.group(2) else "chapter"
            continue
        m = SECTION_RE.match(line)
        if m and cur is not None and len(line) < 160 and not line.endswith((";", ",")):
            section = f"Mục {m.group(1)}" + (f" {m.group(2)}" if m.group(2) else "")
            pending = None if m.group(2) else "section"
            continue
        m = PART_RE.match(line)
        if m and len(line) < 160 and _is_upper_title(line):
            part = line
            chapter = section = ""
            pending = None if m.group(2) else "part"
            continue
        if cur is None:
            preamble.append(line)
        else:
            cur.lines.append(line)
    return preamble, articles


# --------------------------------------------------------------------------------------------------
# Clauses and points inside an article
# --------------------------------------------------------------------------------------------------
@dataclass
class Block:
    """A piece of an article: its lead-in, a clause with its points, a point, or a table row."""

    kind: str  # "lead" | "clause" | "point" | "row" | "paragraph"
    clause: str | None
    point: str | None
    text: str
    lead: str = ""
    """Text that frames this block (the article's lead-in, or the clause's first line for a point)."""
    row: str | None = None


def _signature(line: str) -> bool:
    low = line.lower()
    return any(h in low for h in SIGNATURE_HINTS)


def article_blocks(lines: list[str], max_clause: int = 900) -> list[Block]:
    """Cut an article's lines into clause blocks (long clauses into their points) and table rows."""
    blocks: list[Block] = []
    lead: list[str] = []
    clauses: list[tuple[str, list[str]]] = []  # (number, lines)
    tables: list[list[str]] = []
    table: list[str] = []
    quote = _Quote()
    expected = 1
    for line in lines:
        if TABLE_LINE_RE.match(line):
            table.append(line)
            continue
        if table:
            tables.append(table)
            table = []
        inq = quote.feed(line)
        m = None if inq else CLAUSE_RE.match(line)
        # A clause number must follow the previous one (1, 2, 3...): "2020. Năm..." is not a clause.
        if m and (int(m.group(1)) == expected or (clauses and int(m.group(1)) == int(clauses[-1][0]) + 1)):
            clauses.append((m.group(1), [line]))
            expected = int(m.group(1)) + 1
        elif clauses:
            clauses[-1][1].append(line)
        else:
            lead.append(line)
    if table:
        tables.append(table)
    lead_text = " ".join(lead).strip()
    if not clauses and lead_text:
        blocks.extend(_paragraph_blocks(lead, max_clause * 2))
    elif lead_text:
        blocks.append(Block("lead", None, None, lead_text))
    for num, clines in clauses:
        text = "\n".join(clines)
        if len(text) <= max_clause:
            blocks.append(Block("clause", num, None, text, lead=lead_text))
            continue
        head: list[str] = []
        points: list[tuple[str, list[str]]] = []
        q2 = _Quote()
        for ln in clines:
            inq = q2.feed(ln)
            pm = None if inq else POINT_RE.match(ln)
            if pm:
                points.append((pm.group(1), [ln]))
            elif points:
                points[-1][1].append(ln)
            else:
                head.append(ln)
        if len(points) < 2:
            blocks.append(Block("clause", num, None, text, lead=lead_text))
            continue
        head_text = "\n".join(head)
        for p, plines in points:
            blocks.append(Block("point", num, p, "\n".join(plines), lead=head_text))
    for t in tables:
        blocks.extend(table_blocks(t))
    return [b for b in blocks if b.text.strip() and not _signature(b.text[:200])]


def _paragraph_blocks(lines: list[str], max_chars: int) -> list[Block]:
    """An article without clauses: one block, or paragraphs grouped up to ``max_chars``."""
    text = "\n".join(lines)
    if len(text) <= max_chars:
        return [Block("paragraph", None, None, text)]
    out: list[Block] = []
    buf: list[str] = []
    size = 0
    for ln in lines:
        if buf and size + len(ln) > max_chars // 2:
            out.append(Block("paragraph", None, None, "\n".join(buf)))
            buf, size = [], 0
        buf.append(ln)
        size += len(ln)
    if buf:
        out.append(Block("paragraph", None, None, "\n".join(buf)))
    return out


# --------------------------------------------------------------------------------------------------
# Tables: one passage per row, with its header
# --------------------------------------------------------------------------------------------------
_SEP_RE = re.compile(r"^\|?\s*:?-{2,}")
_STT_RE = re.compile(r"^(?:[IVX]+|\d+(?:\.\d+)*)\.?$")


def fold_label(text: str) -> str:
    from indexer.diacritics import fold

    return re.sub(r"[^a-z ]", "", fold(text)).strip()


def _cells(line: str) -> list[str]:
    inner = line.strip()[1:-1] if line.strip().endswith("|") else line.strip()[1:]
    return [FOOTNOTE_RE.sub("", c).strip() for c in inner.split("|")]


def _repeat_width(header: list[str]) -> int:
    """Side-by-side halves (STT | rate | amount | STT | rate | amount): the width of one half."""
    n = len(header)
    for w in range(1, n // 2 + 1):
        if n % w == 0 and all(header[i] == header[i % w] for i in range(n)) and any(header[:w]):
            return w
    return n


def table_blocks(lines: list[str]) -> list[Block]:
    rows = [_cells(ln) for ln in lines if not _SEP_RE.match(ln.strip().strip("|").strip())]
    rows = [r for r in rows if any(r)]
    if not rows:
        return []
    # Header rows: everything before the first row that starts with an item number (1, 1.1, II).
    first_data = next((i for i, r in enumerate(rows) if _STT_RE.match(r[0])), None)
    if first_data is None or first_data > 4:
        first_data = 1 if len(rows) > 1 else 0
    header_rows = rows[:first_data]
    data = rows[first_data:]
    title = ""
    if header_rows and sum(1 for c in header_rows[0] if c) == 1 and len(header_rows) > 1:
        title = next(c for c in header_rows[0] if c)
        header_rows = header_rows[1:]
    # Column labels: the header rows stacked (a sub-header fills the empty cells under its parent).
    width = max(len(r) for r in rows)
    labels = [""] * width
    for hr in header_rows:
        for j, c in enumerate(hr):
            if c and c not in labels[j]:
                labels[j] = f"{labels[j]} – {c}".strip(" –") if labels[j] and j > 0 and not hr[0] else c
    w = _repeat_width(labels) if labels else width
    groups: dict[int, str] = {}
    out: list[Block] = []
    has_stt_col = bool(labels) and fold_label(labels[0]) in {"stt", "tt", "so tt", "so thu tu"}
    for r in data:
        r = r + [""] * (width - len(r))
        for start in range(0, width, w):
            cells = r[start: start + w]
            lab = labels[start: start + w]
            if not any(cells):
                continue
            if has_stt_col and cells[0] and not _STT_RE.match(cells[0]):
                # A flattened merged cell: the item number column is missing from this row.
                cells = ([""] + cells)[:w] if not cells[-1] else [""] + cells
            stt = cells[0] if _STT_RE.match(cells[0]) else ""
            values = [c for c in cells[1:] if c]
            depth = stt.count(".") + 1 if stt else 0
            amounts = [c for c in cells[2:] if c and re.search(r"\d", c)]
            if stt:
                groups = {d: g for d, g in groups.items() if d < depth}
                if not amounts:
                    # A group heading row ("7.1 | Bệnh binh"): context for the rows below it.
                    groups[depth] = " ".join(values)
                    continue
            parts = []
            for j, c in enumerate(cells):
                if not c or j == 0 and (stt or has_stt_col):
                    continue
                lbl = lab[j] if j < len(lab) else ""
                numeric = bool(re.match(r"\d", c)) and len(c) < 60  # a value: 21%, 7.601.000, 6,2 lần
                parts.append(f"{lbl}: {c}" if lbl and numeric and lbl != c else c)
            ctx = " › ".join(g for _, g in sorted(groups.items()) if g)
            body = "; ".join(parts)
            text = f"{ctx} › {body}" if ctx else body
            out.append(Block("row", None, None, text, lead=title, row=stt or None))
    return out


_ROMAN_HEAD = re.compile(r"^(?:[IVX]+|[A-Z])[.)]\s+\S")


def split_sections(text: str) -> list[Article]:
    """Fallback for a text without Điều (a Department's procedure, a guide): one block per heading
    (Markdown heading, "I. ..." or an upper-case line), paragraphs below it."""
    arts: list[Article] = []
    cur: Article | None = None
    for raw in text.splitlines():
        line = clean_line(raw)
        if not line:
            continue
        is_head = (raw.lstrip().startswith("#") or _ROMAN_HEAD.match(line) is not None
                   or (_is_upper_title(line) and len(line) < 150)) and not TABLE_LINE_RE.match(line)
        if is_head:
            cur = Article("", line.strip(" :"), order=len(arts))
            arts.append(cur)
            continue
        if cur is None:
            cur = Article("", "", order=0)
            arts.append(cur)
        cur.lines.append(line)
    return [a for a in arts if a.lines]
