"""Dossiers: import of the one-stop system's export, the dossier sources, receipt-number recognition.

* :func:`import_dossiers` reads a CSV (UTF-8 with/without BOM, comma/semicolon/tab separated) or XLSX
  export, matches the Vietnamese headers loosely, parses Vietnamese dates, upserts by receipt number, keeps
  the history of status changes and reports bad rows (line number and reason) while good rows import.
* :class:`DossierSource` is what the lookup dialogue reads from: :class:`LocalDossierSource` (the imported
  table), :class:`HttpDossierSource` (a province's lookup API) and :class:`FakeDossierSource` (tests).
* :func:`find_receipt` finds a receipt number in a citizen's message.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, cast, runtime_checkable
from urllib.parse import quote

import httpx
from sqlalchemy import Engine, Table, bindparam, insert, select, update

from bot.dossier_settings import DEFAULT_RECEIPT_PATTERN, DossierSettings
from bot.models import Dossier as DossierRow
from bot.models import DossierHistory, DossierImport, utcnow
from bot.privacy import normalize_mobile, strip_diacritics

log = logging.getLogger(__name__)

# --- the dossier record -----------------------------------------------------------------------------

STATUS_WORDS: dict[str, str] = {
    "registered": "Mới đăng ký, đang chờ cán bộ tiếp nhận",
    "received": "Đã được tiếp nhận, đang chờ chuyển xử lý",
    "rejected": "Không được tiếp nhận",
    "processing": "Đang được xử lý",
    "supplement": "Cần bổ sung giấy tờ",
    "financial": "Chờ thực hiện nghĩa vụ tài chính (nộp phí, lệ phí, thuế)",
    "withdrawn": "Công dân đã rút hồ sơ",
    "stopped": "Đã dừng xử lý",
    "done": "Đã có kết quả, đang chờ trả",
    "returned": "Đã trả kết quả",
    "other": "",
}
"""The fixed set of status codes and how they are said to a citizen ("other" shows the original label)."""

CLOSED_STATUSES = frozenset({"rejected", "withdrawn", "stopped", "done", "returned"})
"""Statuses for which a passed due date does not make the dossier overdue."""

# Normalised (no diacritics, lower-case) label -> code. Checked exactly first, then by containment with the
# longest alias first ("khong duoc tiep nhan" before "duoc tiep nhan").
_STATUS_ALIASES: dict[str, str] = {
    "moi dang ky": "registered",
    "moi tiep nhan": "received",
    "da tiep nhan": "received",
    "duoc tiep nhan": "received",
    "tiep nhan": "received",
    "cho tiep nhan": "registered",
    "khong duoc tiep nhan": "rejected",
    "khong tiep nhan": "rejected",
    "tu choi tiep nhan": "rejected",
    "tu choi": "rejected",
    "dang xu ly": "processing",
    "dang giai quyet": "processing",
    "dang tham dinh": "processing",
    "cho phe duyet": "processing",
    "yeu cau bo sung": "supplement",
    "cho bo sung": "supplement",
    "bo sung ho so": "supplement",
    "yeu cau thuc hien nghia vu tai chinh": "financial",
    "nghia vu tai chinh": "financial",
    "cong dan rut ho so": "withdrawn",
    "rut ho so": "withdrawn",
    "dung xu ly": "stopped",
    "tam dung": "stopped",
    "da xu ly xong": "done",
    "da co ket qua": "done",
    "cho tra ket qua": "done",
    "hoan thanh": "done",
    "da tra ket qua": "returned",
    "da tra": "returned",
}
_STATUS_BY_LENGTH = sorted(_STATUS_ALIASES.items(), key=lambda kv: -len(kv[0]))


def _norm_words(text: str) -> str:
    """Lower-case, no diacritics, words separated by one space."""
    t = strip_diacritics(unicodedata.normalize("NFC", text)).lower()
    return " ".join(re.findall(r"[a-z0-9]+", t))


def map_status(label: str) -> str:
    """The status code of a label as the one-stop system writes it ("other" when unknown)."""
    n = _norm_words(label)
    if not n:
        return "other"
    if n in _STATUS_ALIASES:
        return _STATUS_ALIASES[n]
    padded = f" {n} "
    for alias, code in _STATUS_BY_LENGTH:
        if f" {alias} " in padded:
            return code
    return "other"


@dataclass(frozen=True)
class Dossier:
    receipt: str
    procedure: str
    applicant_name: str
    status: str
    status_label: str
    received_at: datetime | None = None
    due_date: date | None = None
    applicant_phone: str | None = None
    note: str | None = None
    updated_at: datetime | None = None

    @property
    def status_words(self) -> str:
        return STATUS_WORDS.get(self.status) or self.status_label

    def is_overdue(self, today: date) -> bool:
        return self.due_date is not None and self.status not in CLOSED_STATUSES and self.due_date < today


# --- receipt numbers --------------------------------------------------------------------------------

_DASHES_RE = re.compile(r"[\u2010\u2011\u2012\u2013\u2014\u2015\u2212\uFE58\uFE63\uFF0D_]")
_SPACED_SEP_RE = re.compile(r"(?<=\d)[ \t]*([-.])[ \t]*(?=[A-Z0-9])|(?<=[A-Z0-9])[ \t]*([-.])[ \t]*(?=\d)")


def receipt_key(receipt: str) -> str:
    """Upper-case letters and digits only: ``h41.22 – 241105-0012`` -> ``H4122241105 0012`` without spaces."""
    return re.sub(r"[^A-Z0-9]", "", strip_diacritics(unicodedata.normalize("NFKC", receipt)).upper())


def normalize_receipt_text(text: str) -> str:
    """Upper-case, every dash variant as ``-``, spaces around dashes/dots between digits removed."""
    t = unicodedata.normalize("NFKC", text).upper()
    t = _DASHES_RE.sub("-", t)
    return _SPACED_SEP_RE.sub(lambda m: m.group(1) or m.group(2), t)


@lru_cache(maxsize=16)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def find_receipt(text: str | None, pattern: str | None = None) -> str | None:
    """The first receipt number in ``text`` (normalised: upper-case, ``-`` dashes), or None.

    ``pattern`` is applied to the normalised text; if it has a group named ``receipt`` that group is used.
    """
    if not text:
        return None
    rx = _compiled(pattern or DEFAULT_RECEIPT_PATTERN)
    m = rx.search(normalize_receipt_text(text))
    if m is None:
        return None
    value = m.group("receipt") if "receipt" in rx.groupindex else m.group(0)
    return re.sub(r"\s+", "-", value.strip())


# --- dates ------------------------------------------------------------------------------------------

_DMY_RE = re.compile(
    r"^(\d{1,2})[/\-.](\d{1,2})[/\-.](\d{4}|\d{2})(?:[ T,]+(\d{1,2})[:hH](\d{1,2})?(?::(\d{1,2}))?(?:\.\d+)?"
    r"\s*(SA|CH|AM|PM)?)?$"
)
_ISO_RE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?)?$")
_TIME_FIRST_RE = re.compile(r"^(\d{1,2})[:hH](\d{2})(?::(\d{2}))?\s*(SA|CH|AM|PM)?[ ,]+(.+)$")
_WORDS_RE = re.compile(r"^(?:NGAY\s*)?(\d{1,2})\s*THANG\s*(\d{1,2})\s*NAM\s*(\d{4})$")
_EXCEL_EPOCH = datetime(1899, 12, 30)


class DateError(ValueError):
    pass


def _mk(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, ampm: str | None = None) -> datetime:
    if y < 100:
        y += 2000
    if ampm in {"CH", "PM"} and h < 12:
        h += 12
    elif ampm in {"SA", "AM"} and h == 12:
        h = 0
    try:
        return datetime(y, mo, d, h, mi, s)
    except ValueError:
        raise DateError("ngày không tồn tại") from None


def parse_vn_datetime(value: Any) -> datetime | None:
    """Parse a date as Vietnamese exports write it; None for an empty cell, :class:`DateError` if invalid.

    Accepts ``05/11/2024``, ``5-11-2024 08:31``, ``05.11.24``, ``05/11/2024 8h31``, ``08:31 05/11/2024``,
    ``05/11/2024 02:31:00 CH``, ``2024-11-05T08:31:00``, ``ngày 05 tháng 11 năm 2024``, Excel date cells and
    Excel serial numbers.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if 1 <= value < 2958466:
            return (_EXCEL_EPOCH + timedelta(days=float(value))).replace(microsecond=0)
        raise DateError("số ngày không hợp lệ")
    text = str(value).strip()
    if not text:
        return None
    t = strip_diacritics(text).upper().replace("\u00a0", " ")
    t = re.sub(r"\s+", " ", t)
    m = _DMY_RE.match(t)
    if m:
        d, mo, y, h, mi, s, ampm = m.groups()
        return _mk(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0), ampm)
    m = _ISO_RE.match(t)
    if m:
        y, mo, d, h, mi, s = m.groups()
        return _mk(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0))
    m = _TIME_FIRST_RE.match(t)
    if m:
        h, mi, s, ampm, rest = m.groups()
        day = parse_vn_datetime(rest)
        if day is None:
            raise DateError("thiếu ngày")
        return _mk(day.year, day.month, day.day, int(h), int(mi), int(s or 0), ampm)
    m = _WORDS_RE.match(t)
    if m:
        d, mo, y = m.groups()
        return _mk(int(y), int(mo), int(d))
    if re.fullmatch(r"\d{5}(?:\.\d+)?", t):
        return parse_vn_datetime(float(t))
    raise DateError("không đúng định dạng ngày dd/mm/yyyy")


# --- import -------------------------------------------------------------------------------------------

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
    n = _norm_words(header)
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


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return re.sub(r"\s+", " ", str(value).replace("\u00a0", " ")).strip()


@dataclass
class _Parsed:
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

    def values(self) -> dict[str, Any]:
        return {
            "receipt": self.receipt,
            "receipt_key": self.receipt_key,
            "procedure": self.procedure,
            "applicant_name": self.applicant_name,
            "applicant_phone": self.applicant_phone,
            "received_at": self.received_at,
            "due_date": self.due_date,
            "status": self.status,
            "status_label": self.status_label,
            "note": self.note,
            "source_updated_at": self.source_updated_at,
        }


_COMPARED = (
    "receipt",
    "procedure",
    "applicant_name",
    "applicant_phone",
    "received_at",
    "due_date",
    "status",
    "status_label",
    "note",
    "source_updated_at",
)


def _phone_value(raw: str) -> tuple[str | None, bool]:
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


def _parse_row(line: int, cells: Mapping[str, Any], report: ImportReport) -> _Parsed | None:
    problems: list[str] = []
    receipt = _cell_text(cells.get("receipt"))
    key = receipt_key(receipt)
    if not receipt:
        problems.append("thiếu số biên nhận")
    elif len(key) < 5 or len(receipt) > 64:
        problems.append(f'số biên nhận không hợp lệ: "{receipt[:70]}"')
    procedure = _cell_text(cells.get("procedure"))
    if not procedure:
        problems.append("thiếu tên thủ tục")
    name = _cell_text(cells.get("applicant_name"))
    if not name:
        problems.append("thiếu người nộp")
    elif len(name) > 200:
        problems.append("tên người nộp quá dài")
    status_label = _cell_text(cells.get("status_label"))
    if not status_label:
        problems.append("thiếu trạng thái")
    received_at: datetime | None = None
    try:
        received_at = parse_vn_datetime(cells.get("received_at"))
        if received_at is None:
            problems.append("thiếu ngày tiếp nhận")
    except DateError as exc:
        problems.append(f'ngày tiếp nhận không hợp lệ ({exc}): "{_cell_text(cells.get("received_at"))[:40]}"')
    due: date | None = None
    try:
        due_dt = parse_vn_datetime(cells.get("due_date"))
        due = due_dt.date() if due_dt else None
    except DateError as exc:
        problems.append(f'ngày hẹn trả không hợp lệ ({exc}): "{_cell_text(cells.get("due_date"))[:40]}"')
    updated: datetime | None = None
    try:
        updated = parse_vn_datetime(cells.get("updated_at"))
    except DateError as exc:
        problems.append(f'ngày cập nhật không hợp lệ ({exc}): "{_cell_text(cells.get("updated_at"))[:40]}"')
    if problems:
        report.errors.append(RowIssue(line, "; ".join(problems)))
        return None
    assert received_at is not None
    phone, phone_ok = _phone_value(_cell_text(cells.get("applicant_phone")))
    if not phone_ok:
        report.warnings.append(RowIssue(line, "số điện thoại không hợp lệ, đã bỏ trống (không xác minh được)"))
    status = map_status(status_label)
    if status == "other":
        report.warnings.append(RowIssue(line, f'trạng thái chưa biết "{status_label[:60]}", giữ nguyên nhãn gốc'))
    if due is not None and due < received_at.date():
        report.warnings.append(RowIssue(line, "ngày hẹn trả trước ngày tiếp nhận"))
    note = _cell_text(cells.get("note")) or None
    return _Parsed(
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


def read_dossier_file(path: str | Path, report: ImportReport | None = None) -> tuple[list[_Parsed], ImportReport]:
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
                fld = match_header(_cell_text(c))
                if fld and fld not in colmap.values():
                    colmap[i] = fld
                    report.columns[fld] = _cell_text(c)
                elif _cell_text(c):
                    report.ignored_columns.append(_cell_text(c))
            break
        if line >= _MAX_HEADER_SCAN:
            break
    if colmap is None:
        raise DossierImportError(
            "không tìm thấy dòng tiêu đề (cần các cột: " + ", ".join(FIELD_LABELS[f] for f in REQUIRED) + ")"
        )
    missing = [f for f in REQUIRED if f not in colmap.values()]
    if missing:
        seen = ", ".join(_cell_text(c) for c in header_cells if _cell_text(c))
        raise DossierImportError(
            "thiếu cột bắt buộc: " + ", ".join(FIELD_LABELS[f] for f in missing) + f" (các cột trong tệp: {seen})"
        )

    parsed: list[_Parsed] = []
    items = list(colmap.items())
    for line, cells in rows:
        values = {fld: (cells[i] if i < len(cells) else None) for i, fld in items}
        if not any(_cell_text(v) for v in values.values()):
            continue  # an empty row (or one with only a row number in an unused column)
        report.rows_total += 1
        row = _parse_row(line, values, report)
        if row is not None:
            parsed.append(row)
    return parsed, report


def _engine_of(target: Any) -> Engine:
    if isinstance(target, Engine):
        return target
    engine = getattr(target, "engine", None)
    if isinstance(engine, Engine):
        return engine
    raise TypeError("expected a Store or an Engine")


def _history_row(dossier_id: int, row: _Parsed, import_id: int) -> dict[str, Any]:
    return {
        "dossier_id": dossier_id,
        "status": row.status,
        "status_label": row.status_label,
        "note": row.note,
        "changed_at": row.source_updated_at,
        "import_id": import_id,
        "recorded_at": utcnow(),
    }


def import_dossiers(
    target: Any, path: str | Path, *, actor: str | None = None, chunk_size: int = 2000
) -> ImportReport:
    """Import an export into the ``dossiers`` table (``target``: a :class:`bot.store.Store` or an Engine).

    Upsert by receipt number: a new receipt is inserted, a known one updated in place (a row whose
    "Ngày cập nhật" is older than what is stored is skipped as stale), and every change of status or note
    adds a ``dossier_history`` row. Raises :class:`DossierImportError` when the file cannot be read at all.
    """
    import time

    t0 = time.perf_counter()
    engine = _engine_of(target)
    parsed, report = read_dossier_file(path)

    # The same receipt twice in one file: keep the newest (by "Ngày cập nhật", then by position).
    latest: dict[str, _Parsed] = {}
    for row in parsed:
        prev = latest.get(row.receipt_key)
        if prev is None:
            latest[row.receipt_key] = row
            continue
        newer = (row.source_updated_at or datetime.min) >= (prev.source_updated_at or datetime.min)
        keep, drop = (row, prev) if newer else (prev, row)
        latest[row.receipt_key] = keep
        report.warnings.append(
            RowIssue(drop.line, f"số biên nhận {row.receipt} trùng với dòng {keep.line}; dùng dòng {keep.line}")
        )
        report.duplicates += 1
    rows = sorted(latest.values(), key=lambda r: r.line)

    dt = cast(Table, DossierRow.__table__)
    ht = cast(Table, DossierHistory.__table__)
    now = utcnow()
    with engine.begin() as conn:
        import_id = conn.execute(
            insert(DossierImport).values(filename=str(path)[:500], actor=actor, created_at=now).returning(
                DossierImport.id
            )
        ).scalar_one()
        for start in range(0, len(rows), chunk_size):
            chunk = rows[start : start + chunk_size]
            keys = [r.receipt_key for r in chunk]
            existing = {
                rec.receipt_key: rec
                for rec in conn.execute(select(dt).where(dt.c.receipt_key.in_(keys))).mappings()
            }
            inserts: list[dict[str, Any]] = []
            updates: list[dict[str, Any]] = []
            history: list[dict[str, Any]] = []
            new_rows: list[_Parsed] = []
            for r in chunk:
                old = existing.get(r.receipt_key)
                vals = r.values()
                if old is None:
                    inserts.append({**vals, "created_at": now, "updated_at": now})
                    new_rows.append(r)
                    continue
                if (
                    r.source_updated_at is not None
                    and old["source_updated_at"] is not None
                    and r.source_updated_at < old["source_updated_at"]
                ):
                    report.stale += 1
                    continue
                if r.source_updated_at is None and old["source_updated_at"] is not None:
                    vals["source_updated_at"] = old["source_updated_at"]
                if all(_same(old[c], vals[c]) for c in _COMPARED):
                    report.unchanged += 1
                    continue
                updates.append({**vals, "_id": old["id"], "updated_at": now})
                report.updated += 1
                if (old["status"], old["status_label"], old["note"]) != (r.status, r.status_label, r.note):
                    history.append(_history_row(old["id"], r, import_id))
            if inserts:
                conn.execute(insert(dt), inserts)
                report.inserted += len(inserts)
                ids = dict(
                    conn.execute(
                        select(dt.c.receipt_key, dt.c.id).where(dt.c.receipt_key.in_([r.receipt_key for r in new_rows]))
                    ).all()
                )
                history.extend(_history_row(ids[r.receipt_key], r, import_id) for r in new_rows)
            if updates:
                cols: dict[str, Any] = {c: bindparam(c) for c in _COMPARED if c != "receipt_key"}
                cols["updated_at"] = bindparam("updated_at")
                conn.execute(update(dt).where(dt.c.id == bindparam("_id")).values(**cols), updates)
            if history:
                conn.execute(insert(ht), history)
        conn.execute(
            update(DossierImport)
            .where(DossierImport.id == import_id)
            .values(
                rows_total=report.rows_total,
                rows_inserted=report.inserted,
                rows_updated=report.updated,
                rows_unchanged=report.unchanged + report.stale,
                rows_failed=report.failed,
                errors=[{"line": e.line, "reason": e.reason} for e in report.errors[:1000]],
            )
        )
    report.seconds = time.perf_counter() - t0
    log.info(
        "dossier import %s: %d rows, %d new, %d updated, %d unchanged, %d stale, %d failed",
        Path(path).name,
        report.rows_total,
        report.inserted,
        report.updated,
        report.unchanged,
        report.stale,
        report.failed,
    )
    return report


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, datetime) and isinstance(b, datetime):
        return a.replace(microsecond=0, tzinfo=None) == b.replace(microsecond=0, tzinfo=None)
    if isinstance(a, datetime) and isinstance(b, date):
        return a.date() == b
    return bool(a == b)


# --- sources --------------------------------------------------------------------------------------------


class DossierSourceUnavailable(RuntimeError):
    """The dossier system cannot be reached or answered with an error (the citizen is told to retry later)."""


@runtime_checkable
class DossierSource(Protocol):
    def get(self, receipt: str) -> Dossier | None:
        """The dossier with this receipt number, None when there is none; may raise DossierSourceUnavailable."""
        ...


def _from_row(r: DossierRow) -> Dossier:
    return Dossier(
        receipt=r.receipt,
        procedure=r.procedure,
        applicant_name=r.applicant_name,
        applicant_phone=r.applicant_phone,
        received_at=r.received_at,
        due_date=r.due_date,
        status=r.status,
        status_label=r.status_label,
        note=r.note,
        updated_at=r.source_updated_at,
    )


class LocalDossierSource:
    """Dossiers imported into the local database (``ldtbxh dossiers import``)."""

    def __init__(self, target: Any) -> None:
        self.engine = _engine_of(target)

    def get(self, receipt: str) -> Dossier | None:
        key = receipt_key(receipt)
        if not key:
            return None
        from sqlalchemy.orm import Session

        try:
            with Session(self.engine) as s:
                row = s.scalar(select(DossierRow).where(DossierRow.receipt_key == key))
                return _from_row(row) if row else None
        except Exception as exc:  # the database itself is down
            log.error("local dossier lookup failed: %s", type(exc).__name__)
            raise DossierSourceUnavailable("local database unavailable") from exc


def _dig(data: Any, path: str) -> Any:
    cur = data
    for part in path.split("."):
        if part == "":
            continue
        if isinstance(cur, Mapping):
            cur = cur.get(part)
        elif isinstance(cur, list) and part.lstrip("-").isdigit():
            idx = int(part)
            cur = cur[idx] if -len(cur) <= idx < len(cur) else None
        else:
            return None
        if cur is None:
            return None
    return cur


class HttpDossierSource:
    """A province's one-stop lookup API.

    ``url_template`` contains ``{receipt}`` (URL-encoded on use). ``fields`` maps our field names (receipt,
    procedure, applicant_name, applicant_phone, received_at, due_date, status_label, note, updated_at) to
    dotted paths in the JSON answer; the optional key ``_root`` is the path of the dossier object itself
    (e.g. ``data`` or ``data.items.0``). 404, an empty root or a missing status mean "no such dossier";
    timeouts, connection errors, 5xx answers and non-JSON bodies raise :class:`DossierSourceUnavailable`.
    """

    def __init__(
        self,
        url_template: str,
        fields: Mapping[str, str] | None = None,
        *,
        timeout: float = 5.0,
        headers: Mapping[str, str] | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        if "{receipt}" not in url_template:
            raise ValueError("url_template must contain {receipt}")
        self.url_template = url_template
        self.fields = dict(fields or {})
        self.timeout = timeout
        self.client = client or httpx.Client(timeout=timeout, headers=dict(headers or {}))
        if client is not None and headers:
            self.client.headers.update(dict(headers))

    @classmethod
    def from_settings(cls, ds: DossierSettings, client: httpx.Client | None = None) -> HttpDossierSource:
        if not ds.dossier_http_url:
            raise ValueError("LDTBXH_DOSSIER_HTTP_URL is not set")
        return cls(
            ds.dossier_http_url,
            ds.dossier_http_fields,
            timeout=ds.dossier_http_timeout,
            headers=ds.dossier_http_headers,
            client=client,
        )

    def _path(self, fld: str) -> str:
        return self.fields.get(fld, fld)

    def get(self, receipt: str) -> Dossier | None:
        url = self.url_template.replace("{receipt}", quote(receipt, safe=""))
        try:
            resp = self.client.get(url, timeout=self.timeout)
        except httpx.TimeoutException as exc:
            log.warning("dossier API timed out after %.1fs", self.timeout)
            raise DossierSourceUnavailable("timeout") from exc
        except httpx.HTTPError as exc:
            log.warning("dossier API unreachable: %s", type(exc).__name__)
            raise DossierSourceUnavailable("unreachable") from exc
        if resp.status_code in (400, 404, 410, 422):
            return None
        if resp.status_code >= 300:
            log.warning("dossier API answered HTTP %d", resp.status_code)
            raise DossierSourceUnavailable(f"HTTP {resp.status_code}")
        try:
            data = resp.json()
        except ValueError as exc:
            log.warning("dossier API answered with something that is not JSON")
            raise DossierSourceUnavailable("bad answer") from exc
        root = _dig(data, self.fields["_root"]) if "_root" in self.fields else data
        if not root:
            return None
        label = _cell_text(_dig(root, self._path("status_label")))
        procedure = _cell_text(_dig(root, self._path("procedure")))
        if not label and not procedure:
            return None
        try:
            received = parse_vn_datetime(_dig(root, self._path("received_at")))
        except DateError:
            received = None
        try:
            due_dt = parse_vn_datetime(_dig(root, self._path("due_date")))
        except DateError:
            due_dt = None
        try:
            updated = parse_vn_datetime(_dig(root, self._path("updated_at")))
        except DateError:
            updated = None
        phone, _ = _phone_value(_cell_text(_dig(root, self._path("applicant_phone"))))
        return Dossier(
            receipt=_cell_text(_dig(root, self._path("receipt"))) or receipt,
            procedure=procedure,
            applicant_name=_cell_text(_dig(root, self._path("applicant_name"))),
            applicant_phone=phone,
            received_at=received,
            due_date=due_dt.date() if due_dt else None,
            status=map_status(label),
            status_label=label,
            note=_cell_text(_dig(root, self._path("note"))) or None,
            updated_at=updated,
        )

    def close(self) -> None:
        self.client.close()


class FakeDossierSource:
    """In-memory dossiers for tests; ``unavailable=True`` simulates a system that is down."""

    def __init__(self, dossiers: Iterable[Dossier] = (), *, unavailable: bool = False) -> None:
        self.dossiers = {receipt_key(d.receipt): d for d in dossiers}
        self.unavailable = unavailable
        self.calls: list[str] = []

    def add(self, dossier: Dossier) -> None:
        self.dossiers[receipt_key(dossier.receipt)] = dossier

    def get(self, receipt: str) -> Dossier | None:
        self.calls.append(receipt)
        if self.unavailable:
            raise DossierSourceUnavailable("fake outage")
        return self.dossiers.get(receipt_key(receipt))


def make_dossier_source(store: Any, ds: DossierSettings | None = None) -> DossierSource:
    """The source the configuration asks for: ``local`` (default) or ``http``."""
    ds = ds or DossierSettings()
    if ds.dossier_source == "http":
        return HttpDossierSource.from_settings(ds)
    return LocalDossierSource(store)
