"""Dossier import: upload a one-stop export (CSV/XLSX), check the preview (first rows, errors, the bad rows
as a CSV to fix), then import it and read the report."""

from __future__ import annotations

import csv
import io
import re
import secrets
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from bot.dossiers.importer import import_dossiers
from bot.dossiers.readers import DossierImportError, ImportReport, raw_rows, read_dossier_file
from bot.dossiers.statuses import STATUS_WORDS
from bot.privacy import mask_name, mask_phone
from bot.storage.dossiers import UndoRefused
from bot.storage.models import DossierImport
from handlers.console.core import Console, ConsoleRoute, apply_headers
from handlers.console.security import Principal

ALLOWED = (".csv", ".xlsx")
PREVIEW_ROWS = 10
STAGED_HOURS = 2
"""An uploaded file waits this long for its confirmation, then is deleted."""
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def safe_name(name: str) -> str:
    base = Path(name or "").name
    base = re.sub(r"[^\w.\- ]+", "_", base, flags=re.UNICODE).strip(" .") or "tep-xuat"
    return base[:120]


def make_router(c: Console) -> APIRouter:
    r = APIRouter(route_class=ConsoleRoute)
    officer = Depends(c.guard("officer"))

    def recent() -> list[DossierImport]:
        return c.store.dossiers.imports()

    def undoable() -> int | None:
        """The import run that can be undone now (the last one, if it kept its undo data)."""
        last = c.store.dossiers.last_import()
        return last.id if last is not None and c.store.dossiers.can_undo(last) else None

    @r.get("/dossiers", name="console_dossiers")
    def page(request: Request, user: Principal = officer) -> Response:
        return c.render(request, "dossiers.html", {"imports": recent(), "report": None, "undoable": undoable(),
                                                   "max_mb": c.options.max_upload_mb})

    @r.get("/dossiers/imports/{iid}/undo", name="console_dossiers_undo_confirm")
    def undo_confirm(request: Request, iid: int, user: Principal = officer) -> Response:
        """What undoing the run will do, and a button to confirm it."""
        last = c.store.dossiers.last_import()
        if last is None or last.id != iid or not c.store.dossiers.can_undo(last):
            return c.redirect(request, "console_dossiers",
                              error="Chỉ hoàn tác được lần nhập gần nhất, một lần, khi nó còn dữ liệu hoàn tác.")
        undo = last.undo or {}
        return c.render(request, "dossiers.html", {
            "imports": recent(), "report": None, "undoable": None, "max_mb": c.options.max_upload_mb,
            "undo": {"run": last, "removed": len(undo.get("inserted", [])),
                     "restored": len(undo.get("previous", {}))}})

    @r.post("/dossiers/imports/{iid}/undo", name="console_dossiers_undo")
    def undo(request: Request, iid: int, user: Principal = officer,
             confirmed: Annotated[str, Form()] = "") -> Response:
        if confirmed != "1":
            return c.redirect(request, "console_dossiers_undo_confirm", iid=iid)
        try:
            done = c.store.dossiers.undo_import(iid, actor=user.username)
        except UndoRefused as exc:
            return c.redirect(request, "console_dossiers", error=str(exc))
        return c.redirect(request, "console_dossiers",
                          notice=f"Đã hoàn tác lần nhập: xóa {done.removed} hồ sơ đã thêm, khôi phục "
                                 f"{done.restored} hồ sơ đã cập nhật về như trước.")

    @r.post("/dossiers", name="console_dossiers_upload")
    async def upload(request: Request, user: Principal = officer) -> Response:
        """Step 1: the file is kept aside and previewed; nothing is imported yet."""
        form = await request.form()
        file = form.get("file")
        error = None
        preview: dict[str, Any] | None = None
        if not isinstance(file, UploadFile) or not file.filename:
            error = "Chưa chọn tệp."
        elif not file.filename.lower().endswith(ALLOWED):
            error = "Chỉ nhận tệp .csv hoặc .xlsx xuất từ hệ thống một cửa."
        else:
            preview, error = await run_in_threadpool(_stage, c, file, user.username)
        status = 200 if error is None else 400
        return c.render(request, "dossiers.html", {"imports": recent(), "report": None, "preview": preview,
                                                   "error": error, "max_mb": c.options.max_upload_mb,
                                                   "undoable": undoable()},
                        status_code=status)

    @r.post("/dossiers/confirm", name="console_dossiers_confirm")
    def confirm(request: Request, user: Principal = officer, token: Annotated[str, Form()] = "",
                action: Annotated[str, Form()] = "import") -> Response:
        """Step 2: import the previewed file (or drop it)."""
        staged = _staged(c, token)
        if staged is None:
            return c.redirect(request, "console_dossiers", error="Tệp đã hết hạn hoặc đã được nhập; hãy tải lên lại.")
        if action != "import":
            staged.unlink(missing_ok=True)
            return c.redirect(request, "console_dossiers", notice="Đã bỏ tệp, không nhập gì.")
        report, error = _import(c, staged, user.username)
        staged.unlink(missing_ok=True)
        return c.render(request, "dossiers.html", {"imports": recent(), "report": report, "preview": None,
                                                   "error": error, "max_mb": c.options.max_upload_mb,
                                                   "undoable": undoable()},
                        status_code=200 if error is None else 400)

    @r.get("/dossiers/staged/{token}/loi.csv", name="console_dossiers_bad_rows")
    def bad_rows(request: Request, token: str, user: Principal = officer) -> Response:
        """The rows that would fail, with the reason first, to be fixed and uploaded again."""
        staged = _staged(c, token)
        if staged is None:
            return c.redirect(request, "console_dossiers", error="Tệp đã hết hạn; hãy tải lên lại.")
        _parsed, report = read_dossier_file(staged)
        reasons: dict[int, list[str]] = {}
        for e in report.errors:
            reasons.setdefault(e.line, []).append(e.reason)
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["Dòng trong tệp", "Lỗi", "Nội dung dòng…"])
        for line, cells in raw_rows(staged):
            if line in reasons:
                w.writerow([line, "; ".join(reasons[line]), *cells])
        name = f"dong-loi-{_original_name(staged)}.csv"
        c.store.audit.log(user.username, "dossiers.bad_rows", "file", _original_name(staged), None)
        return apply_headers(Response("\ufeff" + buf.getvalue(), media_type="text/csv; charset=utf-8",
                                      headers={"Content-Disposition": f'attachment; filename="{name}"'}))

    return r


def _staging(c: Console) -> Path:
    d = c.settings.data_dir / "uploads"
    d.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in d.glob("*"):
        if old.is_file() and now - old.stat().st_mtime > STAGED_HOURS * 3600:
            old.unlink(missing_ok=True)
    return d


def _staged(c: Console, token: str) -> Path | None:
    if not TOKEN_RE.match(token or ""):
        return None
    hits = [p for p in _staging(c).glob(f"{token}__*") if p.is_file()]
    return hits[0] if hits else None


def _original_name(path: Path) -> str:
    return path.name.split("__", 1)[1]


def _stage(c: Console, file: UploadFile, actor: str) -> tuple[dict[str, Any] | None, str | None]:
    name = safe_name(file.filename or "")
    limit = c.options.max_upload_mb * 1024 * 1024
    token = secrets.token_hex(16)  # no "_": the file is stored as "<token>__<name>" and split at the first "__"
    path = _staging(c) / f"{token}__{name}"
    size = 0
    with path.open("wb") as out:
        while chunk := file.file.read(1024 * 1024):
            size += len(chunk)
            if size > limit:
                out.close()
                path.unlink(missing_ok=True)
                return None, f"Tệp lớn hơn {c.options.max_upload_mb} MB."
            out.write(chunk)
    try:
        parsed, report = read_dossier_file(path)
    except DossierImportError as exc:
        path.unlink(missing_ok=True)
        c.store.audit.log(actor, "dossiers.import_failed", "file", name, None)
        return None, f"Không nhập được tệp {name}: {exc}"
    report.filename = name
    rows = [{"line": d.line, "receipt": d.receipt, "procedure": d.procedure, "applicant": mask_name(d.applicant_name),
             "phone": mask_phone(d.applicant_phone) if d.applicant_phone else "—",
             "status": STATUS_WORDS.get(d.status, d.status), "due": d.due_date.strftime("%d/%m/%Y") if d.due_date else "—"}
            for d in parsed[:PREVIEW_ROWS]]
    return {"token": token, "report": report, "rows": rows, "valid": len(parsed)}, None


def _import(c: Console, path: Path, actor: str) -> tuple[ImportReport | None, str | None]:
    name = _original_name(path)
    with tempfile.TemporaryDirectory(prefix="dossier-upload-") as tmp:
        clean = Path(tmp) / name  # the importer records the file's own name
        clean.write_bytes(path.read_bytes())
        try:
            report = import_dossiers(c.store.dossiers, clean, actor=actor, name=name)
        except DossierImportError as exc:
            c.store.audit.log(actor, "dossiers.import_failed", "file", name, None)
            return None, f"Không nhập được tệp {name}: {exc}"
        c.store.audit.log(actor, "dossiers.import", "file", name,
                          {"rows": report.rows_total, "inserted": report.inserted, "updated": report.updated,
                           "failed": report.failed})
        return report, None
