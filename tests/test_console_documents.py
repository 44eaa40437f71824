"""The console's documents page (handlers.console.documents) through FastAPI's TestClient on SQLite, with a
copy of the shipped catalogue and texts: the list and its filters, uploading several files at once (a
DOCX made here, a Markdown file, a broken PDF, a file over the size limit), retiring a document, reading a
document's passages, and what an officer may not do."""

from __future__ import annotations

import datetime as dt
import io
import shutil
from pathlib import Path

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.runtime import AssistantHolder
from bot.storage import Storage
from bot.storage.models import AuditLog
from handlers.console.router import console_router
from handlers.console.security import hash_password
from indexer.documents.catalog import load_catalog
from tests.fakes import HashingEmbedder
from tests.support import make_settings
from tests.test_console import ADMIN_PW, CSRF_RE, OFFICER_PW, login

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
SHIPPED = Path(__file__).resolve().parents[1] / "knowledge" / "documents"
FIX = Path(__file__).resolve().parent / "data" / "documents"


@pytest.fixture
def site(store: Storage, migrated_url: str, tmp_path: Path, mini_kb: Path) -> tuple[FastAPI, Path, Storage]:
    shutil.copytree(SHIPPED, mini_kb / "documents")
    settings = make_settings(tmp_path, mini_kb, database_url=migrated_url,
                             console={"secure_cookies": False, "max_upload_mb": 1})
    holder = AssistantHolder(settings, embedder=HashingEmbedder(256))
    app = FastAPI()
    app.include_router(console_router(settings, holder, store), prefix="/console")
    store.users.add("admin", hash_password(ADMIN_PW), "admin")
    store.users.add("canbo", hash_password(OFFICER_PW), "officer")
    return app, mini_kb / "documents", store


def client_as(app: FastAPI, username: str) -> tuple[TestClient, str]:
    client = TestClient(app)
    r = login(client, username, ADMIN_PW if username == "admin" else OFFICER_PW)
    assert r.status_code == 303, r.text
    page = client.get("/console/documents")
    assert page.status_code == 200
    m = CSRF_RE.search(page.text)
    assert m
    return client, m.group(1)


def audit_rows(store: Storage, action: str) -> list[AuditLog]:
    with store.db.transaction() as s:
        rows = list(s.scalars(select(AuditLog).where(AuditLog.action == action)))
        s.expunge_all()
        return rows


def make_docx() -> bytes:
    from docx import Document as Docx

    d = Docx()
    for line in ("ỦY BAN NHÂN DÂN TỈNH THỬ NGHIỆM", "Số: 45/2025/QĐ-UBND", "Thử Nghiệm, ngày 10 tháng 6 năm 2025",
                 "QUYẾT ĐỊNH", "Quy định mức hỗ trợ học nghề cho người lao động",
                 "Điều 1. Phạm vi điều chỉnh",
                 "Quyết định này quy định mức hỗ trợ học nghề cho người lao động trên địa bàn tỉnh.",
                 "Điều 2. Mức hỗ trợ",
                 "1. Người lao động được hỗ trợ tối đa 4.500.000 đồng cho một khóa học.",
                 "2. Người khuyết tật được hỗ trợ tối đa 6.000.000 đồng cho một khóa học.",
                 "Điều 3. Hiệu lực thi hành",
                 "Quyết định này có hiệu lực kể từ ngày 20 tháng 6 năm 2025."):
        d.add_paragraph(line)
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


MARKDOWN = """# Hướng dẫn nội bộ tiếp nhận hồ sơ

## 1. Tiếp nhận

Cán bộ kiểm tra giấy tờ và ghi sổ.

## 2. Trả kết quả

Trả kết quả tại Bộ phận Một cửa.
"""


def test_the_list_shows_the_shipped_catalogue_and_filters_it(site: tuple[FastAPI, Path, Storage]) -> None:
    app, docs, _store = site
    client, _ = client_as(app, "canbo")
    catalog = load_catalog(docs)
    r = client.get("/console/documents")
    assert r.status_code == 200
    assert 'aria-current="page">Văn bản</a>' in r.text
    assert f"trợ lý trích dẫn ({len(catalog.documents)} văn bản)" in r.text
    assert "Tải văn bản lên" not in r.text and "Ngừng sử dụng<span" not in r.text  # administrators only
    assert "ldtbxh documents build" in r.text
    r = client.get("/console/documents", params={"q": "20/2021/nđ-cp"})
    assert "<th scope=\"row\">20/2021/NĐ-CP</th>" in r.text
    assert "Bị thay thế một phần" in r.text and "bởi 76/2024/NĐ-CP từ 2024-07-01" in r.text
    assert "01/07/2021" in r.text and "chinh-sach-tro-giup-xa-hoi-doi-voi-doi-tuong-bao-tro-xa-hoi.md" in r.text
    # search without diacritics, on the title
    r = client.get("/console/documents", params={"q": "tro giup xa hoi doi voi doi tuong bao tro"})
    assert "20/2021/NĐ-CP" in r.text
    review = sum(1 for d in catalog.documents if d.needs_review)
    assert review
    partly = [d for d in catalog.documents if d.status == "partly_superseded"]
    r = client.get("/console/documents", params={"trang_thai": "partly_superseded"})
    assert f"{len(partly)} văn bản phù hợp" in r.text
    assert "Còn hiệu lực</span>" not in r.text
    r = client.get("/console/documents", params={"q": "không-có-văn-bản-nào-như-vậy"})
    assert "0 văn bản phù hợp" in r.text and "Không có văn bản nào." in r.text
    assert client.get("/console/documents", params={"trang": 999}).status_code == 200


def test_upload_reports_each_file_and_writes_only_the_good_ones(site: tuple[FastAPI, Path, Storage]) -> None:
    app, docs, store = site
    client, token = client_as(app, "admin")
    before_catalog = load_catalog(docs)
    before_files = {p for p in (docs / "texts").rglob("*") if p.is_file()}
    files = [
        ("files", ("quyet-dinh-45.docx", make_docx(),
                   "application/vnd.openxmlformats-officedocument.wordprocessingml.document")),
        ("files", ("huong-dan-noi-bo.md", MARKDOWN.encode(), "text/markdown")),
        ("files", ("hong.pdf", b"%PDF-1.4 these are not the bytes of a pdf \x00\x01\x02", "application/pdf")),
        ("files", ("ban-scan.pdf", (FIX / "ban-scan.pdf").read_bytes(), "application/pdf")),
        ("files", ("bang-tinh.xlsx", b"PK\x03\x04", "application/octet-stream")),
        ("files", ("qua-lon.md", b"x" * (1024 * 1024 + 10), "text/markdown")),
    ]
    r = client.post("/console/documents/upload", data={"csrf_token": token}, files=files)
    assert r.status_code == 200, r.text
    rows = r.text.split('id="ket-qua-nhap"')[1].split("</table>")[0]
    def row(name: str) -> str:
        return rows.split(f'<th scope="row">{name}</th>')[1].split("</tr>")[0]
    assert "Đã nhập</span>" in row("quyet-dinh-45.docx") and "45/2025/QĐ-UBND" in row("quyet-dinh-45.docx")
    md = row("huong-dan-noi-bo.md")
    assert "Đã nhập, có cảnh báo" in md and "không tìm thấy số hiệu" in md
    assert "Lỗi, không nhập" in row("hong.pdf")
    assert "Lỗi, không nhập" in row("ban-scan.pdf") and "OCR" in row("ban-scan.pdf")
    assert "không được hỗ trợ" in row("bang-tinh.xlsx")
    assert "lớn hơn 1 MB" in row("qua-lon.md")
    # only the two good files reached the catalogue and the texts folder
    after = load_catalog(docs)
    added = {d.number for d in after.documents} - {d.number for d in before_catalog.documents}
    assert added == {"45/2025/QĐ-UBND", "huong-dan-noi-bo"}
    new_doc = after.get("45/2025/QĐ-UBND")
    assert new_doc is not None and new_doc.needs_review and new_doc.effective == dt.date(2025, 6, 20)
    new_files = {p.relative_to(docs).as_posix() for p in (docs / "texts").rglob("*") if p.is_file()} - \
        {p.relative_to(docs).as_posix() for p in before_files}
    assert new_files == {"texts/quyet-dinh-45.md", "texts/huong-dan-noi-bo.md"}
    assert not any(p.name.startswith(".") for p in (docs / "texts").iterdir())
    # the hand-written fields of the shipped entries are untouched
    old = before_catalog.get("20/2021/NĐ-CP")
    assert after.get("20/2021/NĐ-CP") == old
    assert sum(d.needs_review for d in after.documents) == sum(d.needs_review for d in before_catalog.documents) + 2
    (entry,) = audit_rows(store, "documents.import")
    assert entry.actor == "admin" and set(entry.details["documents"]) == added  # type: ignore[index]
    assert set(entry.details["failed"]) == {"hong.pdf", "ban-scan.pdf", "bang-tinh.xlsx", "qua-lon.md"}  # type: ignore[index]

    # its passages, with their citations
    r = client.get("/console/documents/passages", params={"so": "45/2025/QĐ-UBND"})
    assert r.status_code == 200
    assert "Điều 1 Quyết định 45/2025/QĐ-UBND" in r.text and "khoản 2 Điều 2 Quyết định" in r.text
    assert "6.000.000 đồng" in r.text and "Cần rà soát" in r.text
    # nothing chosen, or every file bad: 400 and a message
    r = client.post("/console/documents/upload", data={"csrf_token": token})
    assert r.status_code == 400 and "Chưa chọn tệp nào." in r.text
    r = client.post("/console/documents/upload", data={"csrf_token": token},
                    files=[("files", ("x.pdf", b"rubbish", "application/pdf"))])
    assert r.status_code == 400 and "Lỗi, không nhập" in r.text


def test_retire_asks_first_then_marks_the_document_and_writes_the_audit(site: tuple[FastAPI, Path, Storage]) -> None:
    app, docs, store = site
    client, token = client_as(app, "admin")
    number = "02/2021/TT-BLĐTBXH"
    r = client.get("/console/documents/retire", params={"so": number})
    assert r.status_code == 200 and f"Ngừng sử dụng văn bản {number}?" in r.text
    # without the confirmation: back to the question, nothing changed
    r = client.post("/console/documents/retire", data={"csrf_token": token, "so": number}, follow_redirects=False)
    assert r.status_code == 303 and "/console/documents/retire?so=" in r.headers["location"]
    assert load_catalog(docs).get(number).status == "in_force"  # type: ignore[union-attr]
    r = client.post("/console/documents/retire", data={"csrf_token": token, "so": number, "confirmed": "1"})
    assert r.status_code == 200 and f"Đã ngừng sử dụng văn bản {number}" in r.text
    doc = load_catalog(docs).get(number)
    assert doc is not None and doc.status == "retired" and doc.retired == dt.date.today()
    raw = yaml.safe_load((docs / "catalog.yaml").read_text(encoding="utf-8"))
    assert next(d for d in raw["documents"] if d["number"] == number)["status"] == "retired"
    (entry,) = audit_rows(store, "documents.retire")
    assert entry.actor == "admin" and entry.target_id == number
    # listed as retired; a second retirement and an unknown number are refused with a message
    r = client.get("/console/documents", params={"trang_thai": "retired"})
    assert "1 văn bản phù hợp" in r.text and number in r.text
    r = client.post("/console/documents/retire", data={"csrf_token": token, "so": number, "confirmed": "1"})
    assert "đã ngừng sử dụng từ trước" in r.text
    r = client.get("/console/documents/retire", params={"so": "9/2099/NĐ-CP"})
    assert "Không có văn bản này trong danh mục." in r.text
    assert len(audit_rows(store, "documents.retire")) == 1


def test_an_officer_may_read_but_not_upload_or_retire(site: tuple[FastAPI, Path, Storage]) -> None:
    app, docs, store = site
    client, token = client_as(app, "canbo")
    before = (docs / "catalog.yaml").read_bytes()
    r = client.post("/console/documents/upload", data={"csrf_token": token},
                    files=[("files", ("huong-dan.md", MARKDOWN.encode(), "text/markdown"))])
    assert r.status_code == 403 and "chỉ dành cho quản trị viên" in r.text
    r = client.post("/console/documents/retire", data={"csrf_token": token, "so": "20/2021/NĐ-CP", "confirmed": "1"})
    assert r.status_code == 403
    assert client.get("/console/documents/retire", params={"so": "20/2021/NĐ-CP"}).status_code == 403
    assert (docs / "catalog.yaml").read_bytes() == before
    assert not (docs / "texts" / "huong-dan.md").exists()
    assert len(audit_rows(store, "auth.forbidden")) == 3
    # passages of a shipped document (from a pháp điển page), with their citations
    r = client.get("/console/documents/passages", params={"so": "20/2021/NĐ-CP"})
    assert r.status_code == 200 and "Điều 4 Nghị định 20/2021/NĐ-CP" in r.text
    r = client.get("/console/documents/passages", params={"so": "khong-co"}, follow_redirects=False)
    assert r.status_code == 303


def test_upload_without_the_csrf_token_is_refused(site: tuple[FastAPI, Path, Storage]) -> None:
    app, docs, _store = site
    client, _token = client_as(app, "admin")
    r = client.post("/console/documents/upload", files=[("files", ("huong-dan.md", MARKDOWN.encode(), "text/markdown"))])
    assert r.status_code == 403 and "CSRF" in r.text
    assert not (docs / "texts" / "huong-dan.md").exists()


def test_an_admin_uploads_then_rebuilds_the_documents_index_from_the_page(
        store: Storage, migrated_url: str, tmp_path: Path, mini_kb: Path) -> None:
    """Upload a decision, press "Dựng lại chỉ mục văn bản": the index is built in the background, published,
    audited, and the page says so; a broken catalogue fails with its errors and the old index stays."""
    import time

    from indexer.documents.index import current_doc_version, docs_root

    settings = make_settings(tmp_path, mini_kb, database_url=migrated_url, console={"secure_cookies": False})
    holder = AssistantHolder(settings, embedder=HashingEmbedder(256))
    app = FastAPI()
    app.include_router(console_router(settings, holder, store), prefix="/console")
    store.users.add("admin", hash_password(ADMIN_PW), "admin")
    store.users.add("canbo", hash_password(OFFICER_PW), "officer")
    officer, officer_token = client_as(app, "canbo")
    assert "Dựng lại chỉ mục văn bản</button>" not in officer.get("/console/documents").text
    assert officer.post("/console/documents/rebuild", data={"csrf_token": officer_token}).status_code == 403

    client, token = client_as(app, "admin")
    r = client.post("/console/documents/upload", data={"csrf_token": token},
                    files=[("files", ("qd-123.md", (FIX / "quyet-dinh-123.md").read_bytes(), "text/markdown"))])
    assert r.status_code == 200 and "123/QĐ-SLĐTBXH" in r.text
    root = docs_root(settings.index_root)
    assert current_doc_version(root) is None

    def rebuild_and_wait() -> str:
        r = client.post("/console/documents/rebuild", data={"csrf_token": token})
        assert r.status_code == 200 and "Đang dựng lại chỉ mục văn bản" in r.text
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            page = client.get("/console/documents").text
            if "Đang dựng:" not in page and 'id="doc-build"' in page and ("Đã dựng xong" in page or "thất bại" in page):
                return page
            time.sleep(0.2)
        raise AssertionError("the documents index build did not finish in 120 s")

    page = rebuild_and_wait()
    version = current_doc_version(root)
    assert version and f"Đã dựng xong chỉ mục văn bản <code>{version}</code>" in page and "do admin" in page
    assert [a.target_id for a in audit_rows(store, "documents.build")] == [version]
    assert len(audit_rows(store, "documents.build_start")) == 1

    (mini_kb / "documents" / "supersession.yaml").write_text("supersessions: [{document: 123/QĐ-SLĐTBXH}]\n",
                                                             encoding="utf-8")
    page = rebuild_and_wait()
    assert "Dựng chỉ mục văn bản thất bại; chỉ mục cũ vẫn được dùng." in page
    assert 'id="doc-build-errors"' in page
    assert current_doc_version(root) == version, "a failed build leaves the published index"
