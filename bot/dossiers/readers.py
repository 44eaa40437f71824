"""Reading a one-stop system's export (CSV or XLSX) into dossier rows, with a report of the bad ones.

CSV in UTF-8 (with or without BOM), UTF-16 or Windows-1258, separated by commas, semicolons, tabs or
bars; XLSX (the first sheet with a recognisable header). The header row may be below a title; column
headers are matched loosely (case, spacing, lost diacritics); dates are parsed as Vietnamese exports write
them. A bad row is reported with its line number and reason while the good rows import.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from bot.dossiers.dates import DateError, parse_vn_datetime
from bot.dossiers.receipts import receipt_key
from bot.dossiers.statuses import map_status
from bot.privacy import normalize_mobile
from indexer.diacritics import fold_words

FIELDS = (
    "receipt",
    "procedure",
    "applicant_name",
    "applicant_phone",
    "received_at",
    "due_date",
    "status_label",
    "note",
    "updated_at",
)
REQUIRED = ("receipt", "procedure", "applicant_name", "received_at", "status_label")
FIELD_LABELS = {
    "receipt": "Số biên nhận / Mã hồ sơ",
    "procedure": "Tên thủ tục",
    "applicant_name": "Người nộp",
    "applicant_phone": "Số điện thoại",
    "received_at": "Ngày tiếp nhận",
    "due_date": "Ngày hẹn trả",
    "status_label": "Trạng thái",
    "note": "Ghi chú",
    "updated_at": "Ngày cập nhật",
}
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "receipt": ("so bien nhan", "ma ho so", "ma hs", "so hs", "so ho so", "ma bien nhan", "receipt", "ma so ho so"),
    "procedure": ("ten thu tuc", "thu tuc", "ten thu tuc hanh chinh", "ten tthc", "tthc", "procedure"),
    "applicant_name": (
        "nguoi nop",
        "ten nguoi nop",
        "ho ten nguoi nop",
        "ho va ten",
        "chu ho so",
        "nguoi dung ten",
        "to chuc ca nhan",
        "cong dan",
        "applicant",
    ),
    "applicant_phone": ("so dien thoai", "dien thoai", "sdt", "so dt", "dt lien he", "phone"),
    "received_at": ("ngay tiep nhan", "ngay nhan", "ngay nop", "thoi gian tiep nhan", "received"),
    "due_date": ("ngay hen tra", "hen tra", "ngay hen", "han xu ly", "han giai quyet", "due"),
    "status_label": ("trang thai", "tinh trang", "trang thai ho so", "tinh trang ho so", "status"),
    "note": ("ghi chu", "y kien", "noi dung xu ly", "note"),
    "updated_at": ("ngay cap nhat", "cap nhat", "thoi gian cap nhat", "cap nhat luc", "updated"),
}


def match_header(header: str) -> str | None:
    """The field a column header stands for (loose: case, spacing, lost diacritics), or None."""
    n = fold_words(header)
    if not n:
        return None
    best: tuple[int, str] | None = None
    padded = f" {n} "
    for fld, aliases in HEADER_ALIASES.items():
        for alias in aliases:
            if n == alias:
                return fld
            if f" {alias} " in padded and (best is None or len(alias) > best[0]):
                best = (len(alias), fld)
    return best[1] if best else None


@dataclass
class RowIssue:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"dòng {self.line}: {self.reason}"


@dataclass
class ImportReport:
    filename: str
    file_format: str = ""
    columns: dict[str, str] = field(default_factory=dict)
    """field -> the header it was matched to"""
    ignored_columns: list[str] = field(default_factory=list)
    rows_total: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    duplicates: int = 0
    """rows whose receipt number appears again further down the same file (the newer row is used)"""
    errors: list[RowIssue] = field(default_factory=list)
    warnings: list[RowIssue] = field(default_factory=list)
    seconds: float = 0.0
    import_id: int | None = None
    """The ``dossier_imports`` row of the run, once stored (for its undo)."""

    @property
    def failed(self) -> int:
        return len(self.errors)

    @property
    def imported(self) -> int:
        return self.inserted + self.updated + self.unchanged

    def format(self, max_lines: int = 200) -> str:
        lines = [
            f"Tệp: {self.filename} ({self.file_format})",
            f"Số dòng dữ liệu: {self.rows_total}",
            f"  Thêm mới: {self.inserted} · Cập nhật: {self.updated} · Không đổi: {self.unchanged}"
            f" · Bỏ qua vì cũ hơn dữ liệu đang có: {self.stale} · Lỗi: {self.failed}",
        ]
        if self.duplicates:
            lines.append(f"  Trùng số biên nhận trong tệp (dùng dòng mới hơn): {self.duplicates}")
        if self.ignored_columns:
            lines.append("Cột không dùng: " + ", ".join(self.ignored_columns))
        if self.errors:
            lines.append(f"Dòng lỗi, không được nhập ({len(self.errors)}):")
            lines += [f"  {e}" for e in self.errors[:max_lines]]
            if len(self.errors) > max_lines:
                lines.append(f"  … và {len(self.errors) - max_lines} dòng lỗi khác")
        if self.warnings:
            lines.append(f"Cảnh báo ({len(self.warnings)}):")
            lines += [f"  {w}" for w in self.warnings[:max_lines]]
            if len(self.warnings) > max_lines:
                lines.append(f"  … và {len(self.warnings) - max_lines} cảnh báo khác")
        if self.seconds:
            lines.append(f"Thời gian: {self.seconds:.1f} giây")
        return "\n".join(lines)


class DossierImportError(ValueError):
    """The file cannot be imported at all (unreadable, no header, a required column missing)."""


_MAX_HEADER_SCAN = 15


def _read_csv(path: Path) -> tuple[str, Iterator[tuple[int, list[str]]]]:
    raw = path.read_bytes()
    for enc in ("utf-8-sig", "utf-16", "cp1258"):
        try:
            text = raw.decode(enc)
            if enc == "utf-16" and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
                continue
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - cp1258 decodes nearly everything
        raise DossierImportError("không đọc được tệp: không phải UTF-8")
    first_lines = text[:20000].splitlines()[:_MAX_HEADER_SCAN] or [""]
    counts = {d: sum(line.count(d) for line in first_lines) for d in (";", ",", "\t", "|")}
    delim = max(counts, key=lambda d: counts[d])
    if counts[delim] == 0:
        delim = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)

    def rows() -> Iterator[tuple[int, list[str]]]:
        start = 1
        for row in reader:
            yield start, row
            start = reader.line_num + 1

    name = {";": "dấu chấm phẩy", ",": "dấu phẩy", "\t": "tab", "|": "dấu |"}[delim]
    return f"CSV, phân cách bằng {name}", rows()


def _read_xlsx(path: Path) -> tuple[str, Iterator[tuple[int, list[Any]]]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise DossierImportError(f"không mở được tệp Excel: {exc}") from None
    ws = wb.worksheets[0]
    for candidate in wb.worksheets:  # the first sheet that has a recognisable header
        head = list(candidate.iter_rows(min_row=1, max_row=_MAX_HEADER_SCAN, values_only=True))
        if any(_header_score(list(r)) >= 3 for r in head):
            ws = candidate
            break

    def rows() -> Iterator[tuple[int, list[Any]]]:
        try:
            for i, row in enumerate(ws.iter_rows(values_only=True), start=1):
                yield i, list(row)
        finally:
            wb.close()

    return f"XLSX, trang tính '{ws.title}'", rows()


def _header_score(row: Sequence[Any]) -> int:
    return len({f for f in (match_header(str(c)) for c in row if c not in (None, "")) if f})


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return re.sub(r"\s+", " ", str(value).replace("\u00a0", " ")).strip()


@dataclass
class ParsedDossier:
    line: int
    receipt: str
    receipt_key: str
    procedure: str
    applicant_name: str
    applicant_phone: str | None
    received_at: datetime
    due_date: date | None
    status: str
    status_label: str
    note: str | None
    source_updated_at: datetime | None


def phone_value(raw: str) -> tuple[str | None, bool]:
    """(stored value, ok): a mobile in national form, a landline's digits, or None."""
    if not raw:
        return None, True
    mobile = normalize_mobile(raw)
    if mobile:
        return mobile, True
    digits = re.sub(r"\D", "", raw)
    if len(digits) == 9 and normalize_mobile("0" + digits):  # a number cell lost its leading zero
        return "0" + digits, True
    if digits.startswith("84") and len(digits) in (11, 12):
        digits = "0" + digits[2:]
    if re.fullmatch(r"0\d{9,10}", digits):
        return digits, True
    return None, False


def _parse_row(line: int, cells: Mapping[str, Any], report: ImportReport) -> ParsedDossier | None:
    problems: list[str] = []
    receipt = cell_text(cells.get("receipt"))
    key = receipt_key(receipt)
    if not receipt:
        problems.append("thiếu số biên nhận")
    elif len(key) < 5 or len(receipt) > 64:
        problems.append(f'số biên nhận không hợp lệ: "{receipt[:70]}"')
    procedure = cell_text(cells.get("procedure"))
    if not procedure:
        problems.append("thiếu tên thủ tục")
    name = cell_text(cells.get("applicant_name"))
    if not name:
        problems.append("thiếu người nộp")
    elif len(name) > 200:
        problems.append("tên người nộp quá dài")
    status_label = cell_text(cells.get("status_label"))
    if not status_label:
        problems.append("thiếu trạng thái")
    received_at: datetime | None = None
    try:
        received_at = parse_vn_datetime(cells.get("received_at"))
        if received_at is None:
            problems.append("thiếu ngày tiếp nhận")
    except DateError as exc:
        problems.append(f'ngày tiếp nhận không hợp lệ ({exc}): "{cell_text(cells.get("received_at"))[:40]}"')
    due: date | None = None
    try:
        due_dt = parse_vn_datetime(cells.get("due_date"))
        due = due_dt.date() if due_dt else None
    except DateError as exc:
        problems.append(f'ngày hẹn trả không hợp lệ ({exc}): "{cell_text(cells.get("due_date"))[:40]}"')
    updated: datetime | None = None
    try:
        updated = parse_vn_datetime(cells.get("updated_at"))
    except DateError as exc:
        problems.append(f'ngày cập nhật không hợp lệ ({exc}): "{cell_text(cells.get("updated_at"))[:40]}"')
    if problems:
        report.errors.append(RowIssue(line, "; ".join(problems)))
        return None
    assert received_at is not None
    phone, phone_ok = phone_value(cell_text(cells.get("applicant_phone")))
    if not phone_ok:
        report.warnings.append(RowIssue(line, "số điện thoại không hợp lệ, đã bỏ trống (không xác minh được)"))
    status = map_status(status_label)
    if status == "other":
        report.warnings.append(RowIssue(line, f'trạng thái chưa biết "{status_label[:60]}", giữ nguyên nhãn gốc'))
    if due is not None and due < received_at.date():
        report.warnings.append(RowIssue(line, "ngày hẹn trả trước ngày tiếp nhận"))
    note = cell_text(cells.get("note")) or None
    return ParsedDossier(
        line=line,
        receipt=receipt.upper(),
        receipt_key=key,
        procedure=procedure,
        applicant_name=name,
        applicant_phone=phone,
        received_at=received_at,
        due_date=due,
        status=status,
        status_label=status_label[:200],
        note=note,
        source_updated_at=updated,
    )


def raw_rows(path: str | Path) -> Iterator[tuple[int, list[str]]]:
    """Every row of an export as text cells, with its line number (to give back the rows that failed)."""
    p = Path(path)
    _fmt, rows = _read_xlsx(p) if p.suffix.lower() in {".xlsx", ".xlsm"} else _read_csv(p)
    for line, cells in rows:
        yield line, [cell_text(c) for c in cells]


def read_dossier_file(path: str | Path, report: ImportReport | None = None) -> tuple[list[ParsedDossier], ImportReport]:
    """Parse a whole export; bad rows go to ``report.errors``. Raises :class:`DossierImportError`."""
    p = Path(path)
    report = report or ImportReport(filename=p.name)
    if not p.is_file():
        raise DossierImportError(f"không tìm thấy tệp {p}")
    suffix = p.suffix.lower()
    rows: Iterator[tuple[int, list[Any]]]
    if suffix in {".xlsx", ".xlsm"}:
        report.file_format, rows = _read_xlsx(p)
    elif suffix in {".csv", ".txt", ".tsv"}:
        report.file_format, rows = _read_csv(p)
    elif suffix == ".xls":
        raise DossierImportError("định dạng .xls cũ chưa được hỗ trợ: hãy lưu lại thành .xlsx hoặc .csv")
    else:
        raise DossierImportError(f"định dạng tệp không hỗ trợ: {suffix or '(không có đuôi)'} (cần .csv hoặc .xlsx)")

    # The header is the first row (among the first few: exports often have a title above) that names at
    # least three known columns.
    colmap: dict[int, str] | None = None
    header_cells: list[Any] = []
    for line, cells in rows:
        if _header_score(cells) >= 3:
            header_cells = cells
            colmap = {}
            for i, c in enumerate(cells):
                fld = match_header(cell_text(c))
                if fld and fld not in colmap.values():
                    colmap[i] = fld
                    report.columns[fld] = cell_text(c)
                elif cell_text(c):
                    report.ignored_columns.append(cell_text(c))
            break
        if line >= _MAX_HEADER_SCAN:
            break
    if colmap is None:
        raise DossierImportError(
            "không tìm thấy dòng tiêu đề (cần các cột: " + ", ".join(FIELD_LABELS[f] for f in REQUIRED) + ")"
        )
    missing = [f for f in REQUIRED if f not in colmap.values()]
    if missing:
        seen = ", ".join(cell_text(c) for c in header_cells if cell_text(c))
        raise DossierImportError(
            "thiếu cột bắt buộc: " + ", ".join(FIELD_LABELS[f] for f in missing) + f" (các cột trong tệp: {seen})"
        )

    parsed: list[ParsedDossier] = []
    items = list(colmap.items())
    for line, cells in rows:
        values = {fld: (cells[i] if i < len(cells) else None) for i, fld in items}
        if not any(cell_text(v) for v in values.values()):
            continue  # an empty row (or one with only a row number in an unused column)
        report.rows_total += 1
        row = _parse_row(line, values, report)
        if row is not None:
            parsed.append(row)
    return parsed, report
