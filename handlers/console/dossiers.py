"""Dossier import: upload a one-stop export (CSV/XLSX) and read the import report."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select, update
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from bot.dossiers import DossierImportError, ImportReport, import_dossiers
from bot.models import DossierImport
from handlers.console.core import Console, ConsoleRoute
from handlers.console.security import Principal

ALLOWED = (".csv", ".xlsx")


def safe_name(name: str) -> str:
    base = Path(name or "").name
    base = re.sub(r"[^\w.\- ]+", "_", base, flags=re.UNICODE).strip(" .") or "tep-xuat"
    return base[:120]


def make_router(c: Console) -> APIRouter:
    r = APIRouter(route_class=ConsoleRoute)
    officer = Depends(c.guard("officer"))

    def recent() -> list[DossierImport]:
        with c.store.session() as s:
            return list(s.scalars(select(DossierImport).order_by(DossierImport.id.desc()).limit(20)))

    @r.get("/dossiers", name="console_dossiers")
    def page(request: Request, user: Principal = officer) -> Response:
        return c.render(request, "dossiers.html", {"imports": recent(), "report": None,
                                                   "max_mb": c.options.max_upload_mb})

    @r.post("/dossiers", name="console_dossiers_upload")
    async def upload(request: Request, user: Principal = officer) -> Response:
        form = await request.form()
        file = form.get("file")
        error = None
        report: ImportReport | None = None
        if not isinstance(file, UploadFile) or not file.filename:
            error = "Chưa chọn tệp."
        elif not file.filename.lower().endswith(ALLOWED):
            error = "Chỉ nhận tệp .csv hoặc .xlsx xuất từ hệ thống một cửa."
        else:
            report, error = await run_in_threadpool(_import, c, file, user.username)
        status = 200 if error is None else 400
        return c.render(request, "dossiers.html", {"imports": recent(), "report": report, "error": error,
                                                   "max_mb": c.options.max_upload_mb}, status_code=status)

    return r


def _import(c: Console, file: UploadFile, actor: str) -> tuple[ImportReport | None, str | None]:
    name = safe_name(file.filename or "")
    limit = c.options.max_upload_mb * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="dossier-upload-") as tmp:
        path = Path(tmp) / name
        size = 0
        with path.open("wb") as out:
            while chunk := file.file.read(1024 * 1024):
                size += len(chunk)
                if size > limit:
                    return None, f"Tệp lớn hơn {c.options.max_upload_mb} MB."
                out.write(chunk)
        try:
            report = import_dossiers(c.store, path, actor=actor)
        except DossierImportError as exc:
            c.store.audit(actor, "dossiers.import_failed", "file", name, None)
            return None, f"Không nhập được tệp {name}: {exc}"
        report.filename = name
        c.store.audit(actor, "dossiers.import", "file", name,
                      {"rows": report.rows_total, "inserted": report.inserted, "updated": report.updated,
                       "failed": report.failed})
        with c.store.session() as s:  # record the uploaded name, not the temporary path
            s.execute(update(DossierImport).where(DossierImport.filename == str(path)[:500])
                      .values(filename=name))
        return report, None
