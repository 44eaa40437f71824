"""Dossier import (messy CSV/XLSX, upsert, history, bad-row report), receipt recognition and the sources."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from typer.testing import CliRunner

from bot.config import DossierSettings
from bot.dossiers.dates import DateError, parse_vn_datetime
from bot.dossiers.importer import import_dossiers
from bot.dossiers.readers import DossierImportError, match_header
from bot.dossiers.receipts import find_receipt, receipt_key
from bot.dossiers.sources import (
    DossierSource,
    DossierSourceUnavailable,
    HttpDossierSource,
    LocalDossierSource,
    make_dossier_source,
)
from bot.dossiers.statuses import Dossier, map_status
from bot.storage import Storage
from bot.storage.dossiers import UndoRefused
from bot.storage.models import AuditLog, DossierHistory, DossierImport
from bot.storage.models import Dossier as DossierRow
from tests.fakes import FakeDossierSource

DATA = Path(__file__).parent / "data" / "dossiers"


# --- receipt numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("H41.22-241105-0012", "H41.22-241105-0012"),
        ("cho em hỏi hồ sơ số h41.22-241105-0012 đến đâu rồi ạ", "H41.22-241105-0012"),
        ("Mã hồ sơ: H41.22 – 241105 – 0012.", "H41.22-241105-0012"),
        ("H41.22—241105—0012", "H41.22-241105-0012"),
        ("h41.22‐241105‑0012", "H41.22-241105-0012"),
        ("ma hs H41.22 241105 0012 nhe", "H41.22-241105-0012"),
        ("000.00.20.H41-240927-0001", "000.00.20.H41-240927-0001"),
        ("tra giúp 000.00.20.h41 - 240927 - 0001", "000.00.20.H41-240927-0001"),
    ],
)
def test_find_receipt_normalises_case_spaces_and_dashes(text: str, expected: str) -> None:
    found = find_receipt(text)
    assert found == expected
    assert receipt_key(found) == receipt_key(expected)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "trợ cấp thất nghiệp cần giấy tờ gì",
        "số điện thoại của tôi là 0912345678",
        "tôi nộp hồ sơ ngày 05/11/2024",
        "hẹn trả 03-12-2024 lúc 8:30",
        "CCCD 001204012345",
    ],
)
def test_find_receipt_ignores_other_numbers(text: str) -> None:
    assert find_receipt(text) is None


def test_find_receipt_with_a_configured_pattern() -> None:
    pattern = r"\bHS(?P<receipt>\d{4}-\d{6})\b"
    assert find_receipt("tra hồ sơ hs2024–000123 giúp tôi", pattern) == "2024-000123"
    assert find_receipt("H41.22-241105-0012", pattern) is None
    with pytest.raises(ValueError):
        DossierSettings(receipt_pattern="([")


def test_receipt_key_ignores_separators() -> None:
    assert receipt_key("h41.22 – 241105-0012") == receipt_key("H41.22-241105-0012") == "H41222411050012"


# --- dates, headers, statuses -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("05/11/2024", datetime(2024, 11, 5)),
        ("5/11/2024 08:31", datetime(2024, 11, 5, 8, 31)),
        ("05-11-2024 8h31", datetime(2024, 11, 5, 8, 31)),
        ("05.11.24", datetime(2024, 11, 5)),
        ("12/11/2024 03:02:00 CH", datetime(2024, 11, 12, 15, 2)),
        ("12/11/2024 12:10 SA", datetime(2024, 11, 12, 0, 10)),
        ("08:31 05/11/2024", datetime(2024, 11, 5, 8, 31)),
        ("2024-11-05T08:31:00", datetime(2024, 11, 5, 8, 31)),
        ("2024-11-05", datetime(2024, 11, 5)),
        ("ngày 05 tháng 11 năm 2024", datetime(2024, 11, 5)),
        ("Ngay 5 thang 11 nam 2024", datetime(2024, 11, 5)),
        (datetime(2024, 11, 5, 8, 31), datetime(2024, 11, 5, 8, 31)),
        (date(2024, 11, 5), datetime(2024, 11, 5)),
        (45601, datetime(2024, 11, 5)),
        ("45601", datetime(2024, 11, 5)),
        ("", None),
        (None, None),
    ],
)
def test_parse_vn_datetime(value: object, expected: datetime | None) -> None:
    assert parse_vn_datetime(value) == expected


@pytest.mark.parametrize("value", ["31/02/2024", "ngày mai", "13/13/2024", "2024/13/01", "05/11"])
def test_parse_vn_datetime_rejects_bad_dates(value: str) -> None:
    with pytest.raises(DateError):
        parse_vn_datetime(value)


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("Số biên nhận", "receipt"),
        ("SO BIEN NHAN", "receipt"),
        ("Số biên nhận / Mã hồ sơ", "receipt"),
        ("  mã   hồ sơ ", "receipt"),
        ("Tên thủ tục", "procedure"),
        ("ten thu tuc hanh chinh", "procedure"),
        ("Người nộp", "applicant_name"),
        ("Số điện thoại người nộp", "applicant_phone"),
        ("SĐT", "applicant_phone"),
        ("Ngày tiếp nhận", "received_at"),
        ("Ngay hen tra ket qua", "due_date"),
        ("Trạng thái", "status_label"),
        ("Tình trạng hồ sơ", "status_label"),
        ("Ghi chú", "note"),
        ("Ngày cập nhật", "updated_at"),
        ("STT", None),
        ("", None),
    ],
)
def test_match_header_is_loose(header: str, field: str | None) -> None:
    assert match_header(header) == field


@pytest.mark.parametrize(
    ("label", "code"),
    [
        ("Mới đăng ký", "registered"),
        ("Đã tiếp nhận", "received"),
        ("Được tiếp nhận", "received"),
        ("Không được tiếp nhận", "rejected"),
        ("Đang xử lý", "processing"),
        ("dang xu ly", "processing"),
        ("Yêu cầu bổ sung", "supplement"),
        ("Chờ bổ sung", "supplement"),
        ("Yêu cầu thực hiện nghĩa vụ tài chính", "financial"),
        ("Công dân rút hồ sơ", "withdrawn"),
        ("Dừng xử lý", "stopped"),
        ("Đã xử lý xong", "done"),
        ("Đã có kết quả", "done"),
        ("Đã trả kết quả", "returned"),
        ("Chờ duyệt cấp trên", "other"),
    ],
)
def test_map_status(label: str, code: str) -> None:
    assert map_status(label) == code


# --- import ---------------------------------------------------------------------------------------------


def _count(store: Storage, model: type) -> int:
    with store.db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _history(store: Storage, receipt: str) -> list[tuple[str, str | None]]:
    return [(h.status, h.note) for h in store.dossiers.history(receipt_key(receipt))]


def test_import_messy_csv_reports_bad_rows_and_imports_good_ones(store: Storage) -> None:
    report = import_dossiers(store.dossiers, DATA / "messy.csv", actor="tester")
    assert report.rows_total == 9
    assert report.inserted == 5
    assert [(e.line, e.reason.split(":")[0].split(" (")[0]) for e in report.errors] == [
        (5, "thiếu số biên nhận"),
        (6, "ngày tiếp nhận không hợp lệ"),
        (7, "thiếu người nộp"),
        (11, "ngày hẹn trả không hợp lệ"),
    ]
    assert "31/02/2024" in report.errors[1].reason
    warnings = {(w.line, w.reason.split(" ")[0]) for w in report.warnings}
    assert (9, "số") in warnings  # bad phone "0123" dropped
    assert (12, "trạng") in warnings  # unknown status label kept
    text = report.format()
    assert "dòng 5: thiếu số biên nhận" in text and "Thêm mới: 5" in text and "Lỗi: 4" in text
    assert report.ignored_columns == ["Cot thua"]

    src = LocalDossierSource(store.dossiers)
    d = src.get("h41.22 – 241105-0012")
    assert d is not None
    assert (d.procedure, d.applicant_name, d.applicant_phone) == (
        "Giải quyết hưởng trợ cấp thất nghiệp",
        "Nguyễn Văn An",
        "0912345678",
    )
    assert d.received_at == datetime(2024, 11, 5, 8, 31) and d.due_date == date(2024, 12, 3)
    assert (d.status, d.status_label, d.updated_at) == ("processing", "Đang xử lý", datetime(2024, 11, 12, 15, 2))
    assert src.get("000.00.20.H41-240927-0001").applicant_phone == "0354111222"  # type: ignore[union-attr]
    multi = src.get("H41.22-241108-0050")
    assert multi is not None and multi.procedure == "Hỗ trợ học nghề; tư vấn việc làm"
    assert multi.applicant_phone is None and multi.note == "Ghi chú hai dòng"
    other = src.get("H41.22-241110-0070")
    assert other is not None and other.status == "other" and other.status_words == "Chờ duyệt cấp trên"
    assert src.get("H41.22-241107-0044") is None  # the bad row was not imported
    assert isinstance(src, DossierSource)

    with store.db.transaction() as s:
        imp = s.scalar(select(DossierImport))
        assert imp is not None and imp.rows_failed == 4 and imp.rows_inserted == 5 and imp.actor == "tester"
        assert imp.errors and imp.errors[0] == {"line": 5, "reason": "thiếu số biên nhận"}
    assert _history(store, "H41.22-241106-0031") == [("supplement", "Bổ sung bản sao hộ chiếu có chứng thực")]


def test_reimport_updates_in_place_keeps_history_and_skips_stale_rows(store: Storage) -> None:
    import_dossiers(store.dossiers, DATA / "messy.csv")
    again = import_dossiers(store.dossiers, DATA / "messy.csv")
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 5)
    assert _count(store, DossierHistory) == 5

    newer = import_dossiers(store.dossiers, DATA / "newer.csv")
    assert (newer.inserted, newer.updated, newer.stale, newer.failed) == (1, 1, 1, 0)
    assert _count(store, DossierRow) == 6
    d = LocalDossierSource(store.dossiers).get("H41.22-241105-0012")
    assert d is not None and d.status == "done" and d.note == "Mời nhận quyết định"
    assert _history(store, "H41.22-241105-0012") == [("processing", None), ("done", "Mời nhận quyết định")]
    # The row dated 01/11 is older than the stored 14/11 state: not applied.
    stale = LocalDossierSource(store.dossiers).get("H41.22-241106-0031")
    assert stale is not None and stale.updated_at == datetime(2024, 11, 14, 9, 10)
    assert len(_history(store, "H41.22-241106-0031")) == 1


def _snapshot(store: Storage) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Every dossier (all columns) and every history row, in id order."""
    with store.db.transaction() as s:
        rows = [tuple(getattr(d, c.key) for c in DossierRow.__table__.columns)
                for d in s.scalars(select(DossierRow).order_by(DossierRow.id))]
        hist = [(h.id, h.dossier_id, h.status, h.note, h.import_id)
                for h in s.scalars(select(DossierHistory).order_by(DossierHistory.id))]
    return rows, hist


def test_undo_of_the_last_import_removes_what_it_added_and_restores_what_it_changed(store: Storage) -> None:
    first = import_dossiers(store.dossiers, DATA / "messy.csv", actor="tester")
    before = _snapshot(store)
    newer = import_dossiers(store.dossiers, DATA / "newer.csv", actor="tester")
    assert (newer.inserted, newer.updated) == (1, 1) and newer.import_id and first.import_id
    after = _snapshot(store)
    assert after != before and len(after[0]) == len(before[0]) + 1
    # only the last run keeps its undo data, and only it can be undone
    with store.db.transaction() as s:
        assert s.get(DossierImport, first.import_id).undo is None  # type: ignore[union-attr]
    with pytest.raises(UndoRefused, match="gần nhất"):
        store.dossiers.undo_import(first.import_id, actor="tester")
    assert _snapshot(store) == after

    result = store.dossiers.undo_import(newer.import_id, actor="canbo")
    assert (result.removed, result.restored) == (1, 1) and result.history >= 2
    assert _snapshot(store) == before  # every column of every row, and the history, as before the import
    d = LocalDossierSource(store.dossiers).get("H41.22-241105-0012")
    assert d is not None and d.status == "processing"
    with store.db.transaction() as s:
        imp = s.get(DossierImport, newer.import_id)
        assert imp is not None and imp.undone_by == "canbo" and imp.undone_at is not None and imp.undo is None
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "dossiers.import_undo")).one()
        assert audit.details == {"file": imp.filename, "removed": 1, "restored": 1, "history": result.history}
    with pytest.raises(UndoRefused, match="đã được hoàn tác"):
        store.dossiers.undo_import(newer.import_id, actor="canbo")
    with pytest.raises(UndoRefused, match="gần nhất"):  # the earlier run's undo data is gone
        store.dossiers.undo_import(first.import_id, actor="canbo")

    # importing again after an undo works, and a first import undone leaves nothing
    again = import_dossiers(store.dossiers, DATA / "newer.csv")
    assert (again.inserted, again.updated) == (1, 1)
    store.dossiers.undo_import(again.import_id or 0, actor="canbo")
    assert _snapshot(store) == before


def test_undo_of_a_first_import_leaves_no_dossier(store: Storage) -> None:
    report = import_dossiers(store.dossiers, DATA / "messy.csv")
    result = store.dossiers.undo_import(report.import_id or 0, actor="canbo")
    assert (result.removed, result.restored, result.history) == (5, 0, 5)
    assert _count(store, DossierRow) == 0 and _count(store, DossierHistory) == 0
    assert _count(store, DossierImport) == 1  # the run stays listed, marked undone


def _write_xlsx(path: Path) -> Path:
    wb = Workbook()
    ws = wb.active
    ws.title = "Danh sach"
    ws.append(["DANH SÁCH HỒ SƠ TIẾP NHẬN THÁNG 11/2024"])
    ws.append([])
    ws.append(["STT", "MÃ HỒ SƠ", "Tên Thủ Tục", "Người nộp", "Điện thoại", "Ngày tiếp nhận", "Ngày hẹn trả",
               "Tình trạng", "Ghi chú", "Ngày cập nhật"])
    ws.append([1, "H41.22-241115-0101", "Giải quyết hưởng trợ cấp thất nghiệp", "Phan Thị Lan", "0977 111 222",
               datetime(2024, 11, 15, 9, 0), datetime(2024, 12, 13), "Đang xử lý", None, datetime(2024, 11, 16, 10, 0)])
    ws.append([2, "H41.22-241115-0102", "Cấp giấy phép lao động", "Trịnh Văn Minh", 912333444,
               "15/11/2024", 45650, "Chờ bổ sung", "Bổ sung giấy khám sức khỏe", "16/11/2024 11:00"])
    ws.append([3, "H41.22-241115-0103", "Cấp giấy phép lao động", "Lý Thị Nga", None,
               "không rõ", "13/12/2024", "Đang xử lý", None, None])
    ws.append([4, None, None, None, None, None, None, None, None, None])  # empty row: ignored
    ws.append([5, "H41.22-241115-0104", None, "Mai Văn Oanh", "0933444555", "15/11/2024", None, "Đã tiếp nhận"])
    wb.save(path)
    return path


def test_import_xlsx_with_title_rows_and_excel_dates(store: Storage, tmp_path: Path) -> None:
    report = import_dossiers(store.dossiers, _write_xlsx(tmp_path / "export.xlsx"))
    assert report.file_format.startswith("XLSX")
    assert report.inserted == 2
    assert [(e.line, e.reason.split(" (")[0].split(":")[0]) for e in report.errors] == [
        (6, "ngày tiếp nhận không hợp lệ"),
        (8, "thiếu tên thủ tục"),
    ]
    src = LocalDossierSource(store.dossiers)
    a = src.get("H41.22-241115-0101")
    assert a is not None and a.received_at == datetime(2024, 11, 15, 9, 0) and a.applicant_phone == "0977111222"
    b = src.get("H41.22-241115-0102")
    assert b is not None and b.due_date == date(2024, 12, 24) and b.status == "supplement"
    assert b.applicant_phone == "0912333444"  # a number cell loses its leading zero in Excel


def test_duplicate_receipts_in_one_file_keep_the_newest(store: Storage, tmp_path: Path) -> None:
    f = tmp_path / "dup.csv"
    f.write_text(
        "Số biên nhận,Tên thủ tục,Người nộp,Ngày tiếp nhận,Trạng thái,Ngày cập nhật\n"
        "H41.22-241120-0001,TTHC A,Nguyễn Văn A,20/11/2024,Đã xử lý xong,22/11/2024 10:00\n"
        "H41.22-241120-0001,TTHC A,Nguyễn Văn A,20/11/2024,Đang xử lý,21/11/2024 10:00\n",
        encoding="utf-8",
    )
    report = import_dossiers(store.dossiers, f)
    assert (report.inserted, report.duplicates) == (1, 1)
    assert report.warnings[0].line == 3
    assert LocalDossierSource(store.dossiers).get("H41.22-241120-0001").status == "done"  # type: ignore[union-attr]


def test_unusable_files_are_refused_with_a_reason(store: Storage, tmp_path: Path) -> None:
    missing = tmp_path / "missing.csv"
    missing.write_text("Số biên nhận;Người nộp;Ngày tiếp nhận;Ghi chú\nH41.22-241120-0001;A;20/11/2024;\n")
    with pytest.raises(DossierImportError, match="thiếu cột bắt buộc: Tên thủ tục, Trạng thái"):
        import_dossiers(store.dossiers, missing)
    noheader = tmp_path / "noheader.csv"
    noheader.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(DossierImportError, match="không tìm thấy dòng tiêu đề"):
        import_dossiers(store.dossiers, noheader)
    pdf = tmp_path / "x.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    with pytest.raises(DossierImportError, match="định dạng"):
        import_dossiers(store.dossiers, pdf)
    with pytest.raises(DossierImportError, match="không tìm thấy tệp"):
        import_dossiers(store.dossiers, tmp_path / "nope.csv")
    assert _count(store, DossierRow) == 0


def test_cli_upgrade_import_show(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from handlers.cli_db import db_app, dossiers_app

    monkeypatch.setenv("LDTBXH_DATABASE_URL", db_url)
    monkeypatch.setenv("LDTBXH_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    res = runner.invoke(dossiers_app, ["import", str(DATA / "messy.csv")])
    assert res.exit_code == 3 and "run: ldtbxh db upgrade" in res.output
    res = runner.invoke(db_app, ["current"])
    assert res.exit_code == 1
    res = runner.invoke(db_app, ["upgrade"])
    assert res.exit_code == 0, res.output
    assert runner.invoke(db_app, ["current"]).exit_code == 0
    res = runner.invoke(dossiers_app, ["import", str(DATA / "messy.csv")])
    assert res.exit_code == 0, res.output
    assert "Thêm mới: 5" in res.output and "dòng 6: ngày tiếp nhận không hợp lệ" in res.output
    res = runner.invoke(dossiers_app, ["show", "h41.22-241105-0012"])
    assert res.exit_code == 0, res.output
    assert "Nguyễn Văn An" in res.output and "09******78" in res.output and "0912345678" not in res.output
    assert "Lịch sử:" in res.output
    store = Storage(db_url)
    actions = [a.action for a in store.audit.entries()]
    store.close()
    assert actions[:2] == ["dossiers.show", "dossiers.import"]


# --- sources ---------------------------------------------------------------------------------------

FIELDS = {
    "_root": "data",
    "receipt": "soBienNhan",
    "procedure": "tenThuTuc",
    "applicant_name": "chuHoSo.hoTen",
    "applicant_phone": "chuHoSo.soDienThoai",
    "received_at": "ngayTiepNhan",
    "due_date": "ngayHenTra",
    "status_label": "trangThai",
    "note": "ghiChu",
}
API_DOSSIER = {
    "soBienNhan": "H41.22-241105-0012",
    "tenThuTuc": "Giải quyết hưởng trợ cấp thất nghiệp",
    "chuHoSo": {"hoTen": "Nguyễn Văn An", "soDienThoai": "+84912345678"},
    "ngayTiepNhan": "05/11/2024 08:31",
    "ngayHenTra": "2024-12-03",
    "trangThai": "Yêu cầu bổ sung",
    "ghiChu": "Bổ sung bản sao sổ BHXH",
}


def _handler(request: httpx.Request) -> httpx.Response:
    receipt = request.url.path.rsplit("/", 1)[-1]
    assert request.headers.get("x-api-key") == "k"
    if receipt == "H41.22-241105-0012":
        return httpx.Response(200, json={"data": API_DOSSIER})
    if receipt == "EMPTY-000000-0000":
        return httpx.Response(200, json={"data": None})
    if receipt == "BROKEN-000000-0000":
        return httpx.Response(200, text="<html>maintenance</html>")
    if receipt == "DOWN-000000-0000":
        return httpx.Response(503)
    if receipt == "SLOW-000000-0000":
        raise httpx.ReadTimeout("slow", request=request)
    return httpx.Response(404, json={"error": "not found"})


def test_http_source_maps_fields_and_reports_outages() -> None:
    ds = DossierSettings(
        dossier_source="http",
        dossier_http_url="https://motcua.example/api/hoso/{receipt}",
        dossier_http_fields=FIELDS,
        dossier_http_headers={"x-api-key": "k"},
        dossier_http_timeout=2,
    )
    src = HttpDossierSource.from_settings(ds, client=httpx.Client(transport=httpx.MockTransport(_handler)))
    d = src.get("H41.22-241105-0012")
    assert d == Dossier(
        receipt="H41.22-241105-0012",
        procedure="Giải quyết hưởng trợ cấp thất nghiệp",
        applicant_name="Nguyễn Văn An",
        applicant_phone="0912345678",
        received_at=datetime(2024, 11, 5, 8, 31),
        due_date=date(2024, 12, 3),
        status="supplement",
        status_label="Yêu cầu bổ sung",
        note="Bổ sung bản sao sổ BHXH",
    )
    assert src.get("H41.22-999999-9999") is None
    assert src.get("EMPTY-000000-0000") is None
    for broken in ("BROKEN-000000-0000", "DOWN-000000-0000", "SLOW-000000-0000"):
        with pytest.raises(DossierSourceUnavailable):
            src.get(broken)


def test_http_settings_need_a_url_template() -> None:
    with pytest.raises(ValueError, match="DOSSIER_HTTP_URL"):
        DossierSettings(dossier_source="http")
    with pytest.raises(ValueError):
        DossierSettings(dossier_source="soap")


class _SlowHandler(BaseHTTPRequestHandler):
    """Answers only when the test is over (``server.release`` is set at teardown)."""

    def do_GET(self) -> None:  # noqa: N802
        self.server.release.wait(30)  # type: ignore[attr-defined]
        body = json.dumps({"data": API_DOSSIER}).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def slow_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    server.release = threading.Event()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.release.set()  # type: ignore[attr-defined]
        server.shutdown()
        server.server_close()


def test_http_source_times_out_against_a_slow_server(slow_server: str) -> None:
    src = HttpDossierSource(slow_server + "/hoso/{receipt}", FIELDS, timeout=0.3)
    with pytest.raises(DossierSourceUnavailable, match="timeout"):
        src.get("H41.22-241105-0012")
    src.close()
    closed = HttpDossierSource("http://127.0.0.1:9/{receipt}", FIELDS, timeout=0.5)
    with pytest.raises(DossierSourceUnavailable):
        closed.get("H41.22-241105-0012")


def test_fake_and_factory(store: Storage) -> None:
    fake = FakeDossierSource([Dossier("H41.22-241105-0012", "TTHC", "A B", "processing", "Đang xử lý")])
    assert fake.get("h41.22 241105 0012") is not None
    fake.unavailable = True
    with pytest.raises(DossierSourceUnavailable):
        fake.get("H41.22-241105-0012")
    assert isinstance(make_dossier_source(DossierSettings(), store.dossiers), LocalDossierSource)
    http = make_dossier_source(
        DossierSettings(dossier_source="http", dossier_http_url="http://127.0.0.1:9/{receipt}"), store.dossiers
    )
    assert isinstance(http, HttpDossierSource)
