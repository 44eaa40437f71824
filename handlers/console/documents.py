"""The documents page ("Văn bản"): the catalogue of legal texts (filter by status, search by number or
title), each document's passages with their citations, and for administrators the upload of new texts
(through :func:`indexer.documents.importer.import_paths`) and retiring a document.

The catalogue is a file (``knowledge/documents/catalog.yaml``): the writes of this process go one at a
time (a lock); the importer and :func:`~indexer.documents.catalog.save_catalog` write it atomically.
Administrators rebuild the documents index from the page ("Dựng lại chỉ mục văn bản": in the background,
one at a time, published at once and audited; servers load a new documents index by themselves), or on
the server with ``ldtbxh documents build``.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from handlers.console.core import Console, ConsoleRoute
from handlers.console.knowledge import paginate
from handlers.console.security import Principal
from indexer.diacritics import fold
from indexer.documents.catalog import CatalogError, Document, load_catalog, load_supersession, save_catalog
from indexer.documents.convert import SUPPORTED
from indexer.documents.corpus import Passage, document_passages
from indexer.documents.importer import FileResult, import_paths

STATUS_LABELS = {
    "in_force": "Còn hiệu lực", "partly_superseded": "Bị thay thế một phần", "superseded": "Đã bị thay thế",
    "expired": "Hết hiệu lực", "retired": "Ngừng sử dụng",
}
"""Vietnamese names of the catalogue's statuses (every one of ``indexer.documents.catalog.STATUSES``)."""
MAX_FILES = 20
"""Files per upload."""
BUILD_COMMAND = "ldtbxh documents build"
_WRITE_LOCK = threading.Lock()
"""One catalogue write at a time in this process (upload, retire)."""


@dataclass
class Outcome:
    """One uploaded file's result, for the page."""
    name: str
    state: str
    """imported, warning, error"""
    documents: list[str] = field(default_factory=list)
    articles: int = 0
    messages: list[str] = field(default_factory=list)


OUTCOME_LABELS = {"imported": "Đã nhập", "warning": "Đã nhập, có cảnh báo", "error": "Lỗi, không nhập"}


def safe_name(name: str) -> str:
    """A file name to store an upload under (no folders, no odd characters; the extension kept)."""
    base = Path(name or "").name
    base = re.sub(r"[^\w.\- ]+", "_", base, flags=re.UNICODE).strip(" .") or "van-ban"
    return base[-120:]


def _matches(d: Document, status: str, q: str) -> bool:
    if status and d.status != status:
        return False
    if not q:
        return True
    hay = fold(" ".join([d.number, d.title, *d.aliases])).lower()
    return all(w in hay for w in fold(q).lower().split())


def _outcome(r: FileResult, name: str) -> Outcome:
    if not r.ok:
        return Outcome(name, "error", messages=[r.error])
    return Outcome(name, "warning" if r.warnings else "imported", documents=list(r.documents),
                   articles=r.articles, messages=list(r.warnings))


def make_router(c: Console) -> APIRouter:
    r = APIRouter(route_class=ConsoleRoute)
    officer = Depends(c.guard("officer"))
    admin = Depends(c.guard("admin"))
    docs_dir = c.settings.knowledge_dir / "documents"

    def render_list(request: Request, trang: int = 1, trang_thai: str = "", q: str = "",
                    outcomes: list[Outcome] | None = None, error: str | None = None,
                    status_code: int = 200) -> Response:
        catalog = load_catalog(docs_dir)
        rows = [d for d in catalog.documents if _matches(d, trang_thai, q.strip())]
        page_rows, trang, pages = paginate(rows, trang)
        return c.render(request, "documents.html", {
            "documents": page_rows, "total": len(catalog.documents), "found": len(rows), "trang": trang,
            "pages": pages, "trang_thai": trang_thai, "q": q, "doc_status_labels": STATUS_LABELS,
            "catalog_errors": catalog.errors, "outcomes": outcomes, "outcome_labels": OUTCOME_LABELS,
            "upload_error": error, "max_mb": c.options.max_upload_mb, "max_files": MAX_FILES,
            "accept": ",".join(SUPPORTED), "build_command": BUILD_COMMAND, "build": c.doc_builder.status,
        }, status_code=status_code)

    @r.get("/documents", name="console_documents")
    def page(request: Request, user: Principal = officer, trang: int = 1, trang_thai: str = "",
             q: str = "") -> Response:
        return render_list(request, trang, trang_thai if trang_thai in STATUS_LABELS else "", q[:200])

    @r.post("/documents/upload", name="console_documents_upload")
    async def upload(request: Request, user: Principal = admin) -> Response:
        form = await request.form()
        files = [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]
        if not files:
            return render_list(request, error="Chưa chọn tệp nào.", status_code=400)
        if len(files) > MAX_FILES:
            return render_list(request, error=f"Mỗi lần tải lên tối đa {MAX_FILES} tệp.", status_code=400)
        outcomes, error = await run_in_threadpool(_import, c, files, user.username)
        status = 400 if error or all(o.state == "error" for o in outcomes) else 200
        return render_list(request, outcomes=outcomes, error=error, status_code=status)

    @r.post("/documents/rebuild", name="console_documents_rebuild")
    def rebuild(request: Request, user: Principal = admin) -> Response:
        if not c.doc_builder.start(user.username):
            return c.redirect(request, "console_documents", error="Chỉ mục văn bản đang được dựng; vui lòng chờ.")
        c.store.audit.log(user.username, "documents.build_start")
        return c.redirect(request, "console_documents",
                          notice="Đang dựng lại chỉ mục văn bản; tải lại trang để xem tiến độ.")

    @r.get("/documents/retire", name="console_documents_retire_confirm")
    def retire_confirm(request: Request, user: Principal = admin, so: str = "") -> Response:
        doc = load_catalog(docs_dir).get(so) if so else None
        if doc is None:
            return c.redirect(request, "console_documents", error="Không có văn bản này trong danh mục.")
        if doc.status == "retired":
            return c.redirect(request, "console_documents", error=f"Văn bản {doc.number} đã ngừng sử dụng từ trước.")
        return c.render(request, "documents_retire.html", {"doc": doc, "doc_status_labels": STATUS_LABELS,
                                                           "build_command": BUILD_COMMAND})

    @r.post("/documents/retire", name="console_documents_retire")
    def retire(request: Request, user: Principal = admin, so: Annotated[str, Form()] = "",
               confirmed: Annotated[str, Form()] = "") -> Response:
        if confirmed != "1":
            return c.redirect(request, "console_documents_retire_confirm", query={"so": so})
        with _WRITE_LOCK:
            catalog = load_catalog(docs_dir)
            if catalog.errors:
                return c.redirect(request, "console_documents",
                                  error="Danh mục catalog.yaml đang có lỗi; sửa trước khi thay đổi (ldtbxh documents check).")
            try:
                doc = catalog.retire(so, dt.date.today())
            except CatalogError as exc:
                return c.redirect(request, "console_documents", error=str(exc))
            save_catalog(docs_dir, catalog)
        c.store.audit.log(user.username, "documents.retire", "document", doc.number[:128],
                          {"retired": doc.retired.isoformat() if doc.retired else None})
        return c.redirect(request, "console_documents",
                          notice=f"Đã ngừng sử dụng văn bản {doc.number}. Trợ lý thôi trích văn bản này sau khi "
                                 f"dựng lại chỉ mục văn bản ({BUILD_COMMAND}).")

    @r.get("/documents/passages", name="console_document_passages")
    def passages(request: Request, user: Principal = officer, so: str = "") -> Response:
        catalog = load_catalog(docs_dir)
        doc = catalog.get(so) if so else None
        if doc is None:
            return c.redirect(request, "console_documents", error="Không có văn bản này trong danh mục.")
        sups, _errors = load_supersession(docs_dir)
        found = [_passage_row(p) for p in document_passages(c.settings.knowledge_dir, catalog, sups, doc.number)]
        return c.render(request, "document_passages.html", {
            "doc": doc, "passages": found, "doc_status_labels": STATUS_LABELS})

    return r


def _passage_row(p: Passage) -> dict[str, Any]:
    return {"id": p.id, "citation": p.citation, "title": p.title, "article": p.article, "lead": p.lead,
            "text": p.text, "kind": p.kind, "superseded_by": p.superseded_by, "superseded_from": p.superseded_from,
            "superseded_scope": p.superseded_scope, "text_date": p.text_date}


def _import(c: Console, files: list[UploadFile], actor: str) -> tuple[list[Outcome], str | None]:
    """Save the uploads in a temporary folder (size-checked), import them, audit the run."""
    limit = c.options.max_upload_mb * 1024 * 1024
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="documents-upload-") as tmp:
        saved: dict[str, str] = {}
        used: set[str] = set()
        for f in files:
            name = safe_name(f.filename or "")
            if name.lower() in used:
                stem, suffix = Path(name).stem, Path(name).suffix
                n = 2
                while f"{stem}-{n}{suffix}".lower() in used:
                    n += 1
                name = f"{stem}-{n}{suffix}"
            used.add(name.lower())
            path = Path(tmp) / name
            size = 0
            too_big = False
            with path.open("wb") as out:
                while chunk := f.file.read(1024 * 1024):
                    size += len(chunk)
                    if size > limit:
                        too_big = True
                        break
                    out.write(chunk)
            if too_big:
                path.unlink(missing_ok=True)
                outcomes.append(Outcome(name, "error", messages=[
                    f"Tệp lớn hơn {c.options.max_upload_mb} MB, không nhập."]))
                continue
            saved[str(path)] = name
        results: list[FileResult] = []
        if saved:
            with _WRITE_LOCK:
                try:
                    results = import_paths([Path(p) for p in saved], c.settings.knowledge_dir)
                except ValueError as exc:  # the catalogue has errors: nothing was imported
                    return outcomes, f"Không nhập được: {exc}"
        outcomes += [_outcome(res, saved.get(res.path, Path(res.path).name)) for res in results]
    c.store.audit.log(actor, "documents.import", "files", str(len(outcomes)), {
        "imported": [o.name for o in outcomes if o.state != "error"][:50],
        "documents": [d for o in outcomes for d in o.documents][:50],
        "failed": [o.name for o in outcomes if o.state == "error"][:50]})
    order = {n: i for i, n in enumerate(safe_name(f.filename or "") for f in files)}
    outcomes.sort(key=lambda o: order.get(o.name, len(order)))
    return outcomes, None
