"""From the shipped texts to passages with citations.

Every file under ``knowledge/documents/texts/`` is read: a pháp điển page gives the Articles of many
documents (each names its source); any other file is the text of the catalogue document whose ``file``
it is. The same Article (same document, same Điều) may arrive from several files: it becomes one
passage, taken from the document's own file when there is one (a decree file or its consolidated text is
more complete and more current than a compilation page), else from the most complete page.

Each Article is cut into clause-sized passages (long clauses into their points; annex tables into one
passage per row with its header). Every passage carries its citation parts, the date its wording holds
from, its document's status and any supersession that applies to it, and one primary topic or none.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from indexer import yamlio
from indexer.diacritics import fold
from indexer.documents.catalog import (
    LEFT_OUT,
    TEXTS,
    Catalog,
    Document,
    Supersession,
    find_supersession,
)
from indexer.documents.convert import split_front_matter
from indexer.documents.metadata import detect
from indexer.documents.numbers import citation, number_key, type_from_number
from indexer.documents.phapdien import is_phapdien_page, parse_page
from indexer.documents.structure import Article, article_blocks, split_sections, split_structure

log = logging.getLogger(__name__)
TEXT_SUFFIXES = (".md", ".txt")
LEAD_CHARS = 200
"""How much of a passage's frame (article lead-in, clause head) the lexical index sees."""
MIN_TOPIC_OVERLAP = 3
"""Words a passage must share with a topic's title and scope to take it (documents serving several)."""
AMOUNT_RE = re.compile(r"\d{1,3}(?:\.\d{3})+(?:,\d+)?\s*(?:đồng|đ\b)|\d+(?:,\d+)?\s*lần mức|\d{1,3}(?:\.\d{3})+")


@dataclass
class Passage:
    id: str
    document: str
    doc_type: str
    article: str
    title: str
    kind: str
    text: str
    lead: str = ""
    clause: str | None = None
    point: str | None = None
    row: str | None = None
    source_file: str = ""
    text_date: str | None = None
    partial: bool = False
    code: str | None = None
    topic: str | None = None
    status: str = "in_force"
    superseded_by: str | None = None
    superseded_from: str | None = None
    superseded_scope: str | None = None
    has_amount: bool = False
    unit: int = -1
    """Row of the dense unit (the article, or the table row itself) this passage is scored with."""

    @property
    def citation(self) -> str:
        return citation(self.doc_type, self.document, self.article, self.clause, self.point, self.row)

    @property
    def superseded(self) -> bool:
        return self.superseded_by is not None or self.status in ("superseded", "expired")

    def lexical_text(self) -> str:
        """What the lexical index sees: the article's title, the frame (lead-in) and the passage."""
        parts = [self.title, self.lead[:LEAD_CHARS], self.text]
        return ". ".join(p for p in parts if p)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Corpus:
    passages: list[Passage]
    units: list[str]
    """Dense units' texts: one per article (title and opening), one per table row."""
    documents: dict[str, Document]
    warnings: list[str] = field(default_factory=list)
    articles: int = 0
    duplicates: int = 0


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", fold(text).lower()).strip("-")


def _iso(d: dt.date | None) -> str | None:
    return d.isoformat() if d else None


def _topics_index(knowledge_dir: Path) -> dict[str, set[str]]:
    """Folded words of each topic's title and scope (knowledge/topics.yaml), for the primary topic."""

    path = knowledge_dir / "topics.yaml"
    if not path.exists():
        return {}
    data = yamlio.safe_load(path.read_text(encoding="utf-8")) or {}
    out = {}
    for t in data.get("topics") or []:
        words = re.findall(r"\w+", fold(f"{t.get('title', '')} {t.get('scope', '')}"))
        out[str(t["id"])] = {w for w in words if len(w) > 1}
    return out


def primary_topic(doc_topics: list[str], text: str, index: dict[str, set[str]]) -> str | None:
    """One topic for a passage: its document's only topic, or the document topic whose title and scope
    share the most words with the passage; None when the document serves no topic."""
    if not doc_topics:
        return None
    if len(doc_topics) == 1:
        return doc_topics[0]
    words = set(re.findall(r"\w+", fold(text)))
    best = max(doc_topics, key=lambda t: (len(words & index.get(t, set())), -doc_topics.index(t)))
    return best if len(words & index.get(best, set())) >= MIN_TOPIC_OVERLAP else None


@dataclass
class _Source:
    article: Article
    document: str
    priority: int
    source_file: str
    text_date: dt.date | None


def _read(path: Path) -> tuple[dict[str, Any], str]:
    return split_front_matter(path.read_text(encoding="utf-8", errors="replace"))


def collect_articles(docs_dir: Path, catalog: Catalog, warnings: list[str],
                     progress: Callable[[str, int, int], None] | None = None,
                     only: list[str] | None = None) -> tuple[list[_Source], int]:
    """Every Article of every shipped text (or of the files ``only`` lists, relative to ``docs_dir``),
    one per (document, article): duplicates are dropped."""
    texts_dir = docs_dir / TEXTS
    files = sorted(p for p in texts_dir.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES
                   and p.name.lower() != "readme.md") if texts_dir.exists() else []
    if only is not None:
        files = [p for p in files if str(p.relative_to(docs_dir)) in only]
    chosen: dict[tuple[str, str], _Source] = {}
    order: list[tuple[str, str]] = []
    dupes = 0
    for n, path in enumerate(files):
        rel = str(path.relative_to(docs_dir))
        front, body = _read(path)
        sources: list[_Source] = []
        if is_phapdien_page(body):
            page = parse_page(body, rel)
            for a in page.articles:
                assert a.document is not None
                eff = dt.date.fromisoformat(a.effective) if a.effective else None
                sources.append(_Source(a, a.document, 1, rel, eff))
            if page.without_source:
                warnings.append(f"{rel}: {len(page.without_source)} điều không ghi nguồn, bỏ qua "
                                f"(articles without a source line skipped): {', '.join(page.without_source[:5])}")
        else:
            doc = catalog.by_file(rel)
            if doc is None:
                warnings.append(f"{rel}: tệp không có trong catalog.yaml, bỏ qua (file not in the catalogue; "
                                "import it with `ldtbxh documents import`)")
                continue
            meta = detect(body, front, path.name)
            text_date = meta.text_date if number_key(meta.number) == doc.key else doc.effective
            _, arts = split_structure(body)
            if not arts:
                arts = split_sections(body)
            for a in arts:
                a.document = doc.number
                sources.append(_Source(a, doc.number, 2, rel, text_date or doc.effective))
        for s in sources:
            label = s.article.label or f"#{s.article.order}"
            key = (number_key(s.document), label)
            prev = chosen.get(key)
            if prev is None:
                chosen[key] = s
                order.append(key)
                continue
            dupes += 1
            rank_new = (s.priority, not s.article.partial, len(" ".join(s.article.lines)))
            rank_old = (prev.priority, not prev.article.partial, len(" ".join(prev.article.lines)))
            if rank_new > rank_old:
                chosen[key] = s
        if progress:
            progress("read", n + 1, len(files))
    return [chosen[k] for k in order], dupes


def build_corpus(knowledge_dir: Path, catalog: Catalog, supersessions: list[Supersession],
                 progress: Callable[[str, int, int], None] | None = None,
                 today: dt.date | None = None, *, only: list[str] | None = None,
                 keep_left_out: bool = False) -> Corpus:
    """The passages of the shipped texts (of the files ``only`` lists); documents whose status is in
    ``LEFT_OUT`` (expired, retired) are skipped unless ``keep_left_out``."""
    docs_dir = knowledge_dir / "documents"
    warnings: list[str] = []
    sources, dupes = collect_articles(docs_dir, catalog, warnings, progress, only)
    topic_words = _topics_index(knowledge_dir)
    passages: list[Passage] = []
    units: list[str] = []
    documents: dict[str, Document] = {}
    used_ids: set[str] = set()
    missing_docs: set[str] = set()
    retired = 0
    for s in sources:
        doc = catalog.get(s.document)
        if doc is None:
            missing_docs.add(s.document)
            doc = Document(number=s.document, type=type_from_number(s.document) or "")
        if doc.status in LEFT_OUT and not keep_left_out:
            retired += 1
            continue
        documents[doc.key] = doc
        a = s.article
        blocks = article_blocks(a.lines)
        if not blocks and a.title:
            blocks = []
        article_unit = len(units)
        body = " ".join(a.lines)
        units.append(f"{a.title}. {body[:600]}".strip(". ") if a.title else body[:700])
        base = f"{_slug(doc.number)}/{_slug(a.label) or 'muc-' + str(a.order)}"
        blocks_text: list[tuple[str, str | None, str | None, str | None, str, str]]
        if not blocks:
            blocks_text = [("paragraph", None, None, None, a.title or body, "")]
        else:
            blocks_text = [(b.kind, b.clause, b.point, b.row, b.text, b.lead) for b in blocks]
        for i, (kind, clause, point, row, text, lead) in enumerate(blocks_text):
            pid = base + (f"/k{clause}" if clause else "") + (f"/{point}" if point else "") + \
                (f"/r{_slug(row)}" if row else "") + ("" if clause or point or row else f"/p{i}")
            while pid in used_ids:
                pid += "+"
            used_ids.add(pid)
            unit = article_unit
            if kind == "row":
                unit = len(units)
                units.append(f"{a.title}. {lead}: {text}" if lead else f"{a.title}. {text}")
            sup = find_supersession(supersessions, doc.number, a.label or None, clause, s.text_date, today)
            p = Passage(
                id=pid, document=doc.number, doc_type=doc.type or (type_from_number(doc.number) or ""),
                article=a.label, title=a.title, kind=kind, text=text, lead=lead, clause=clause, point=point,
                row=row, source_file=s.source_file, text_date=_iso(s.text_date), partial=a.partial,
                code=a.code, status=doc.status, has_amount=bool(AMOUNT_RE.search(text)), unit=unit,
            )
            if sup is not None:
                p.superseded_by, p.superseded_from, p.superseded_scope = \
                    sup.superseded_by, sup.since.isoformat(), sup.scope
            elif doc.status == "superseded" and doc.superseded_by:
                first = doc.superseded_by[0]
                p.superseded_by = str(first.get("number"))
                p.superseded_from = str(first.get("from") or "") or None
                p.superseded_scope = str(first.get("scope") or "") or None
            p.topic = primary_topic(doc.topics, f"{a.title} {text}", topic_words)
            passages.append(p)
    if missing_docs:
        warnings.append(f"{len(missing_docs)} văn bản chưa có trong catalog.yaml (documents not in the "
                        f"catalogue): {', '.join(sorted(missing_docs)[:8])}")
    if retired:
        warnings.append(f"{retired} điều của văn bản đã hết hiệu lực hoặc ngừng sử dụng (status: expired, "
                        "retired) không được đưa vào chỉ mục")
    return Corpus(passages, units, documents, warnings, articles=len(sources) - retired, duplicates=dupes)


def document_passages(knowledge_dir: Path, catalog: Catalog, supersessions: list[Supersession], number: str,
                      today: dt.date | None = None) -> list[Passage]:
    """The passages of one catalogue document, cut from its shipped file exactly as the index build cuts
    them (a retired or expired document's too); empty when the document has no shipped text."""
    doc = catalog.get(number)
    if doc is None or not doc.file:
        return []
    corpus = build_corpus(Path(knowledge_dir), catalog, supersessions, today=today, only=[doc.file],
                          keep_left_out=True)
    return [p for p in corpus.passages if number_key(p.document) == doc.key]
