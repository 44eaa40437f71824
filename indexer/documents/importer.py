"""Import document files into ``knowledge/documents/``: the text under ``texts/``, the metadata in
``catalog.yaml``.

Each file is converted, its metadata detected (flags override), its structure checked, and only then
written: a file that fails leaves nothing behind, and the catalogue is written once, atomically, at the
end. A pháp điển page holds several documents: all of them are added to the catalogue.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from indexer.diacritics import fold
from indexer.documents.catalog import TEXTS, Catalog, Document, load_catalog, save_catalog, sha256_file
from indexer.documents.convert import SUPPORTED, ConvertError, UnknownStructure, convert_file
from indexer.documents.metadata import DocMeta, detect
from indexer.documents.numbers import canonical_number
from indexer.documents.phapdien import is_phapdien_page, parse_page
from indexer.documents.structure import split_sections, split_structure

SKIP_NAMES = {"readme.md", "readme.txt", "license", "license.md"}


@dataclass
class Overrides:
    number: str | None = None
    type: str | None = None
    title: str | None = None
    issuer: str | None = None
    signed: dt.date | None = None
    effective: dt.date | None = None
    status: str | None = None
    topics: list[str] = field(default_factory=list)

    def any_identity(self) -> bool:
        return bool(self.number or self.type or self.title or self.issuer or self.signed or self.effective)


@dataclass
class FileResult:
    path: str
    ok: bool
    target: str = ""
    documents: list[str] = field(default_factory=list)
    articles: int = 0
    warnings: list[str] = field(default_factory=list)
    error: str = ""
    code: str = ""


@dataclass
class _Plan:
    src: Path
    target: Path
    content: bytes
    documents: list[Document]
    result: FileResult
    multi: bool = False
    """A pháp điển page: several documents, none of which is the page itself."""


def expand(paths: Iterable[Path]) -> list[tuple[Path, Path]]:
    """(file, path relative to the texts folder) for every file given or found in a folder given."""
    out: list[tuple[Path, Path]] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and not f.name.startswith(".") and f.name.lower() not in SKIP_NAMES:
                    out.append((f, Path(p.name) / f.relative_to(p)))
        else:
            out.append((p, Path(p.name)))
    return out


def _target_rel(rel: Path, into: str | None) -> Path:
    rel = rel.with_suffix(".md") if rel.suffix.lower() not in (".md", ".txt") else rel
    parts = [re.sub(r"[^a-z0-9._-]+", "-", fold(x).lower()).strip("-") or "van-ban" for x in rel.parts]
    out = Path(*parts)
    return Path(into) / out if into else out


def _document(meta: DocMeta, ov: Overrides, fallback_number: str) -> Document:
    number = canonical_number(ov.number) if ov.number else (meta.number or fallback_number)
    return Document(
        number=number, type=ov.type or meta.type, title=ov.title or meta.title, issuer=ov.issuer or meta.issuer,
        signed=ov.signed or meta.signed, effective=ov.effective or meta.effective,
        status=ov.status or "in_force", aliases=list(meta.aliases), topics=list(ov.topics), needs_review=True,
    )


def plan_file(src: Path, rel: Path, docs_dir: Path, ov: Overrides, into: str | None) -> _Plan:
    """Everything needed to import one file, without writing anything. Raises ``ConvertError``."""
    conv = convert_file(src)
    target_rel = _target_rel(rel, into)
    result = FileResult(str(src), True, target=str(Path(TEXTS) / target_rel))
    content = src.read_bytes() if src.suffix.lower() in (".md", ".txt", ".markdown") else \
        conv.text.encode("utf-8")
    docs: list[Document] = []
    if is_phapdien_page(conv.text):
        if ov.any_identity():
            result.warnings.append("trang pháp điển gồm nhiều văn bản: bỏ qua --number/--title/... "
                                   "(a pháp điển page holds several documents: identity flags ignored)")
        page = parse_page(conv.text, str(src))
        if not page.articles:
            raise UnknownStructure("Trang pháp điển không có điều nào ghi nguồn (no attributable article).")
        for sd in page.documents.values():
            docs.append(Document(number=sd.number, type=sd.type, title=sd.title, issuer=sd.issuer,
                                 signed=sd.signed, effective=min(sd.effective) if sd.effective else None,
                                 status=ov.status or "in_force", topics=list(ov.topics), needs_review=True))
        result.articles = len(page.articles)
        if page.without_source:
            result.warnings.append(f"{len(page.without_source)} điều không ghi nguồn sẽ bị bỏ qua "
                                   "(articles without a source line)")
    else:
        meta = detect(conv.text, conv.front, src.name)
        _, arts = split_structure(conv.text)
        if not arts:
            arts = split_sections(conv.text)
            longest = max((len(" ".join(a.lines)) for a in arts), default=0)
            if not arts or (len(arts) == 1 and longest > 6000):
                raise UnknownStructure(
                    "Không nhận ra cấu trúc văn bản (không có Điều, Phụ lục hay đề mục) — unknown structure: "
                    "chia văn bản thành Điều/mục có tiêu đề rồi nhập lại.")
        result.articles = len(arts)
        doc = _document(meta, ov, fallback_number=src.stem)
        if not meta.number and not ov.number:
            result.warnings.append(meta.warnings[0])
        result.warnings.extend(w for w in meta.warnings[1:] if not (ov.effective and "hiệu lực" in w))
        docs.append(doc)
    result.documents = [d.number for d in docs]
    return _Plan(src, docs_dir / TEXTS / target_rel, content, docs, result, multi=is_phapdien_page(conv.text))


def import_paths(paths: Iterable[Path], knowledge_dir: Path, overrides: Overrides | None = None,
                 into: str | None = None, dry_run: bool = False) -> list[FileResult]:
    """Import files and folders; returns one result per file (failed ones with their error)."""
    ov = overrides or Overrides()
    docs_dir = Path(knowledge_dir) / "documents"
    catalog = load_catalog(docs_dir)
    if catalog.errors:
        raise ValueError("catalog.yaml có lỗi, sửa trước khi nhập (fix the catalogue first):\n  " +
                         "\n  ".join(catalog.errors))
    results: list[FileResult] = []
    plans: list[_Plan] = []
    for src, rel in expand(paths):
        if src.suffix.lower() not in SUPPORTED:
            results.append(FileResult(str(src), False, error=f"định dạng {src.suffix or '?'} không được hỗ trợ "
                                      "(unsupported format)", code="unsupported_format"))
            continue
        try:
            plans.append(plan_file(src, rel, docs_dir, ov, into))
        except ConvertError as exc:
            results.append(FileResult(str(src), False, error=exc.message, code=exc.code))
        except OSError as exc:
            results.append(FileResult(str(src), False, error=f"không đọc được tệp: {exc}", code="unreadable"))
    if dry_run:
        return results + [p.result for p in plans]
    written: list[Path] = []
    try:
        for pl in plans:
            pl.target.parent.mkdir(parents=True, exist_ok=True)
            tmp = pl.target.with_name(f".{pl.target.name}.{os.getpid()}.tmp")
            tmp.write_bytes(pl.content)
            os.replace(tmp, pl.target)
            written.append(pl.target)
            rel_path = str(pl.target.relative_to(docs_dir))
            digest = sha256_file(pl.target)
            for d in pl.documents:
                _attach(catalog, d, rel_path, digest, pl.multi)
        save_catalog(docs_dir, catalog)
    except Exception:
        for w in written:  # nothing half-imported: the texts go when the catalogue cannot be written
            w.unlink(missing_ok=True)
        raise
    return results + [p.result for p in plans]


def _attach(catalog: Catalog, doc: Document, rel: str, digest: str, multi: bool) -> None:
    """Add ``doc`` to the catalogue with this text as its ``file``, unless the text is a pháp điển page
    and the document already has another file (its own text, or the first page that held it)."""
    cur = catalog.get(doc.number)
    doc.file, doc.sha256 = rel, digest
    if multi and cur is not None and cur.file is not None and cur.file != rel:
        doc.file, doc.sha256 = None, None
    catalog.upsert(doc)
