"""The document catalogue (``knowledge/documents/catalog.yaml``) and the supersession map
(``knowledge/documents/supersession.yaml``).

The catalogue lists every document the knowledge base knows: those whose text is shipped (``file`` and
``sha256`` set, under ``knowledge/documents/texts/``) and those the curated entries only cite. Its schema
is shared with the knowledge engineer; see docs/documents.md.

The supersession map is written by hand: a document, an article or a clause, superseded by what and from
which date. Supersession is often clause by clause and the superseding text may not be shipped, so the
map, not the text, decides whether a passage's wording (and any amount in it) is current.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from indexer import yamlio
from indexer.documents.metadata import parse_date
from indexer.documents.numbers import canonical_number, number_key, short_article

STATUSES = ("in_force", "partly_superseded", "superseded", "expired", "retired")
"""``expired``: the document is no longer in force; ``retired``: an administrator took it out of the
assistant's use (``retired`` holds the date). Both leave the documents index at the next build."""
LEFT_OUT = ("expired", "retired")
"""Statuses whose documents the index build leaves out."""
FIELDS = ("number", "type", "title", "issuer", "signed", "effective", "status", "retired", "superseded_by",
          "aliases", "file", "sha256", "topics", "needs_review")
"""``needs_review``: set on entries whose dates an officer must still confirm (see the catalogue's header)."""
CATALOG = "catalog.yaml"
SUPERSESSION = "supersession.yaml"
TEXTS = "texts"


_LOADER = yamlio.SafeLoader
"""libyaml when present: the catalogue (~350 entries) reads in a fraction of the pure-Python time."""


class CatalogError(ValueError):
    pass


@dataclass
class Document:
    number: str
    type: str = ""
    title: str = ""
    issuer: str = ""
    signed: dt.date | None = None
    effective: dt.date | None = None
    status: str = "in_force"
    superseded_by: list[dict[str, Any]] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    file: str | None = None
    sha256: str | None = None
    topics: list[str] = field(default_factory=list)
    needs_review: bool = False
    retired: dt.date | None = None
    """The date an administrator retired the document (``status: retired``)."""

    @property
    def key(self) -> str:
        return number_key(self.number)

    def to_yaml(self) -> dict[str, Any]:
        d: dict[str, Any] = {"number": self.number, "type": self.type, "title": self.title,
                             "issuer": self.issuer, "signed": self.signed, "effective": self.effective,
                             "status": self.status}
        if self.retired:
            d["retired"] = self.retired
        if self.superseded_by:
            d["superseded_by"] = self.superseded_by
        if self.aliases:
            d["aliases"] = list(self.aliases)
        if self.file:
            d["file"] = self.file
            d["sha256"] = self.sha256
        if self.topics:
            d["topics"] = list(self.topics)
        if self.needs_review:
            d["needs_review"] = True
        return d


@dataclass
class Catalog:
    documents: list[Document]
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """Problems that do not stop a build (a topic id not in knowledge/topics.yaml yet)."""

    def __post_init__(self) -> None:
        self._index()

    def _index(self) -> None:
        self._by_key: dict[str, Document] = {}
        for d in self.documents:
            self._by_key[d.key] = d
            for a in d.aliases:
                self._by_key.setdefault(number_key(a), d)

    def get(self, number: str) -> Document | None:
        """The document with this number or alias."""
        return self._by_key.get(number_key(number))

    def by_file(self, rel: str) -> Document | None:
        return next((d for d in self.documents if d.file == rel), None)

    def upsert(self, doc: Document) -> Document:
        """Add ``doc`` or merge it into the entry with the same number: detected fields fill empty ones;
        hand-written fields (status, superseded_by, topics) are kept."""
        cur = self.get(doc.number) or next((self.get(a) for a in doc.aliases if self.get(a)), None)
        if cur is None:
            self.documents.append(doc)
            self._index()
            return doc
        for name in ("type", "title", "issuer", "signed", "effective"):
            if not getattr(cur, name) and getattr(doc, name):
                setattr(cur, name, getattr(doc, name))
        for a in doc.aliases:
            if number_key(a) not in {number_key(x) for x in cur.aliases} and number_key(a) != cur.key:
                cur.aliases.append(a)
        if doc.file:
            cur.file, cur.sha256 = doc.file, doc.sha256
        for t in doc.topics:
            if t not in cur.topics:
                cur.topics.append(t)
        self._index()
        return cur

    def retire(self, number: str, on: dt.date) -> Document:
        """Mark the document retired from ``on``: the next documents index build leaves it out.
        Raises ``CatalogError`` when the number is unknown or the document is already retired."""
        doc = self.get(number)
        if doc is None:
            raise CatalogError(f"Không có văn bản số {number} trong danh mục.")
        if doc.status == "retired":
            raise CatalogError(f"Văn bản {doc.number} đã ngừng sử dụng từ trước.")
        doc.status, doc.retired = "retired", on
        return doc


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_catalog(docs_dir: Path, topics: set[str] | None = None) -> Catalog:
    """Read ``catalog.yaml``; ``errors`` lists every problem (the index build refuses a catalogue with
    errors, so an officer fixes them all at once)."""
    path = Path(docs_dir) / CATALOG
    if not path.exists():
        return Catalog([])
    errors: list[str] = []
    warnings: list[str] = []
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER) or {}
    except yaml.YAMLError as exc:
        return Catalog([], [f"{path.name}: YAML không hợp lệ (invalid YAML): {exc}"])
    docs: list[Document] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(data.get("documents") or [], 1):
        where = f"{path.name}: document {i}"
        if not isinstance(raw, dict) or not raw.get("number"):
            errors.append(f"{where}: needs a 'number'")
            continue
        unknown = set(raw) - set(FIELDS)
        if unknown:
            errors.append(f"{where} ({raw['number']}): unknown field(s) {sorted(unknown)}")
        number = canonical_number(str(raw["number"]))
        status = str(raw.get("status") or "in_force")
        if status not in STATUSES:
            errors.append(f"{where} ({number}): status must be one of {', '.join(STATUSES)}")
        sup = raw.get("superseded_by") or []
        if not isinstance(sup, list) or not all(isinstance(s, dict) and s.get("number") for s in sup):
            errors.append(f"{where} ({number}): superseded_by must be a list of {{number, from, scope}}")
            sup = []
        for s in sup:
            if s.get("from") is not None and parse_date(s.get("from")) is None:
                errors.append(f"{where} ({number}): superseded_by 'from' must be a date YYYY-MM-DD")
        for name in ("signed", "effective", "retired"):
            if raw.get(name) not in (None, "") and parse_date(raw.get(name)) is None:
                errors.append(f"{where} ({number}): '{name}' must be a date YYYY-MM-DD")
        if raw.get("needs_review") not in (None, True, False):
            errors.append(f"{where} ({number}): 'needs_review' must be true or false")
        doc_topics = [str(t) for t in (raw.get("topics") or [])]
        if topics is not None:
            for t in doc_topics:
                if t not in topics:
                    warnings.append(f"{where} ({number}): topic '{t}' is not in knowledge/topics.yaml")
        if raw.get("file") and not raw.get("sha256"):
            errors.append(f"{where} ({number}): 'file' needs its 'sha256'")
        key = number_key(number)
        if key in seen:
            errors.append(f"{where} ({number}): same number as document {seen[key]}")
        seen[key] = i
        docs.append(Document(
            number=number, type=str(raw.get("type") or ""), title=str(raw.get("title") or ""),
            issuer=str(raw.get("issuer") or ""), signed=parse_date(raw.get("signed")),
            effective=parse_date(raw.get("effective")), status=status, superseded_by=list(sup),
            aliases=[canonical_number(str(a)) for a in raw.get("aliases") or []],
            file=str(raw["file"]) if raw.get("file") else None,
            sha256=str(raw["sha256"]) if raw.get("sha256") else None, topics=doc_topics,
            needs_review=raw.get("needs_review") is True, retired=parse_date(raw.get("retired")),
        ))
    return Catalog(docs, errors, warnings)


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]  # libyaml: same text, faster
    pass


def _date_repr(dumper: yaml.SafeDumper, value: dt.date) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:timestamp", value.isoformat())


_Dumper.add_representer(dt.date, _date_repr)


CATALOG_HEADER = """\
# Legal and procedure documents known to the knowledge base (schema: docs/documents.md).
# Documents whose text is shipped have `file` (under texts/) and its `sha256`; the others are cited by
# curated entries. `status`/`superseded_by` are hand-checked; clause-level supersession lives in
# supersession.yaml. `topics` are ids from knowledge/topics.yaml.
"""


def _header(path: Path) -> str:
    """The comment block at the top of the current file (curated by hand), else ``CATALOG_HEADER``."""
    if path.exists():
        lines: list[str] = []
        for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
            if not (line.startswith("#") or not line.strip()):
                break
            lines.append(line)
        if any(line.startswith("#") for line in lines):
            return "".join(lines)
    return CATALOG_HEADER


def save_catalog(docs_dir: Path, catalog: Catalog) -> None:
    """Write ``catalog.yaml`` atomically (temporary file, then rename), keeping its header comment."""
    path = Path(docs_dir) / CATALOG
    body = yaml.dump({"documents": [d.to_yaml() for d in catalog.documents]}, Dumper=_Dumper,
                     allow_unicode=True, sort_keys=False, width=110)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(_header(path) + body, encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------------
# Supersession map
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Supersession:
    document: str
    article: str | None
    """``Điều 4``, ``Phụ lục II``; None: the whole document."""
    clause: str | None
    superseded_by: str
    since: dt.date
    scope: str
    text_shipped: bool

    def covers(self, document: str, article: str | None, clause: str | None) -> bool:
        if number_key(document) != number_key(self.document):
            return False
        if self.article is None:
            return True
        if article is None or short_article(article) != self.article:
            return False
        # A clause entry covers that clause and the article-level passages that contain it.
        return self.clause is None or clause is None or clause == self.clause


_CLAUSE_REF = re.compile(r"(?i)^(?:khoản\s+(\d+)\s+)?(điều\s+\d+[a-zđ]?|phụ\s+lục\s+[ivxlc\d]+)$")


def load_supersession(docs_dir: Path) -> tuple[list[Supersession], list[str]]:
    path = Path(docs_dir) / SUPERSESSION
    if not path.exists():
        return [], []
    errors: list[str] = []
    try:
        data = yamlio.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        return [], [f"{path.name}: YAML không hợp lệ (invalid YAML): {exc}"]
    out: list[Supersession] = []
    for i, raw in enumerate(data.get("supersessions") or [], 1):
        where = f"{path.name}: entry {i}"
        if not isinstance(raw, dict) or not raw.get("document") or not raw.get("superseded_by"):
            errors.append(f"{where}: needs 'document' and 'superseded_by'")
            continue
        since = parse_date(raw.get("from"))
        if since is None:
            errors.append(f"{where} ({raw['document']}): 'from' must be a date YYYY-MM-DD")
            continue
        parts = raw.get("parts") or [None]
        for part in parts:
            article = clause = None
            if part:
                m = _CLAUSE_REF.match(str(part).strip())
                if not m:
                    errors.append(f"{where} ({raw['document']}): part '{part}' must read 'Điều N', "
                                  "'khoản K Điều N' or 'Phụ lục X'")
                    continue
                clause, article = m.group(1), short_article(m.group(2))
            out.append(Supersession(
                document=canonical_number(str(raw["document"])), article=article, clause=clause,
                superseded_by=canonical_number(str(raw["superseded_by"])), since=since,
                scope=str(raw.get("scope") or ""), text_shipped=bool(raw.get("text_shipped", False)),
            ))
    return out, errors


def find_supersession(entries: list[Supersession], document: str, article: str | None, clause: str | None,
                      text_date: dt.date | None, today: dt.date | None = None) -> Supersession | None:
    """The entry that makes this passage's wording no longer current, if any: it covers the passage,
    has taken effect, and the passage's wording is older than it."""
    today = today or dt.date.today()
    for e in entries:
        if e.since <= today and e.covers(document, article, clause) and (text_date is None or text_date < e.since):
            return e
    return None
