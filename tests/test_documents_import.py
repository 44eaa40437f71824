"""Importing documents: each format (DOCX, PDF with text, HTML, Markdown, plain text), metadata detection
and flags, folders, and bad files (scanned PDF, password, unknown structure, unsupported, empty) that are
reported with a clear message and leave nothing behind."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
import yaml

from indexer.documents.catalog import load_catalog, sha256_file
from indexer.documents.convert import (
    PasswordProtected,
    ScannedPdf,
    UnsupportedFormat,
    convert_file,
    fix_split_glyphs,
)
from indexer.documents.importer import Overrides, import_paths
from indexer.documents.structure import article_blocks, split_structure

FIX = Path(__file__).resolve().parent / "data" / "documents"
FORMATS = ["quyet-dinh-123.docx", "quyet-dinh-123.pdf", "quyet-dinh-123.html", "quyet-dinh-123.md",
           "quyet-dinh-123.txt"]


@pytest.fixture()
def kdir(tmp_path: Path) -> Path:
    k = tmp_path / "knowledge"
    (k / "documents").mkdir(parents=True)
    return k


@pytest.mark.parametrize("name", FORMATS)
def test_each_format_reads_into_the_same_structure(name: str) -> None:
    conv = convert_file(FIX / name)
    _, arts = split_structure(conv.text)
    assert [a.label for a in arts] == ["Điều 1", "Điều 2", "Điều 3", "Điều 4", "Phụ lục I"]
    a3 = arts[2]
    assert a3.title == "Thành phần hồ sơ"
    blocks = article_blocks(a3.lines)
    k1 = next(b for b in blocks if b.clause == "1")
    assert "a) Tờ khai của đối tượng theo mẫu" in k1.text and "c) Bản sao giấy khai sinh" in k1.text
    assert arts[1].chapter.startswith("Chương I")


@pytest.mark.parametrize("name", ["quyet-dinh-123.docx", "quyet-dinh-123.html", "quyet-dinh-123.md"])
def test_annex_table_rows_survive_conversion(name: str) -> None:
    _, arts = split_structure(convert_file(FIX / name).text)
    rows = [b for b in article_blocks(arts[-1].lines) if b.kind == "row"]
    assert [r.row for r in rows] == ["1", "2", "3"]
    assert rows[1].text == "Khoảng cách: 10 km đến dưới 30 km; Mức hỗ trợ: 100.000 đồng" or \
        rows[1].text == "Từ 10 km đến dưới 30 km; Mức hỗ trợ: 100.000 đồng"


def test_pdf_vietnamese_glyphs_are_rejoined() -> None:
    text = convert_file(FIX / "quyet-dinh-123.pdf").text
    assert "Điều 3. Thành phần hồ sơ" in text and "Bộ phận Một cửa" in text
    # Normal text is left alone.
    assert fix_split_glyphs("người ở nhà, bộ phận một cửa") == "người ở nhà, bộ phận một cửa"


@pytest.mark.parametrize("name", FORMATS)
def test_import_detects_metadata(kdir: Path, name: str) -> None:
    res = import_paths([FIX / name], kdir)
    assert len(res) == 1 and res[0].ok, res[0].error
    cat = load_catalog(kdir / "documents")
    doc = cat.get("123/QĐ-SLĐTBXH")
    assert doc is not None
    assert doc.type == "Quyết định"
    assert doc.title.startswith("Về việc ban hành quy trình tiếp nhận hồ sơ trợ cấp xã hội")
    assert doc.issuer == "Sở Lao động - Thương binh và Xã hội"
    assert doc.signed == dt.date(2025, 3, 5) and doc.effective == dt.date(2025, 3, 15)
    assert doc.file and doc.sha256 == sha256_file(kdir / "documents" / doc.file)
    assert (kdir / "documents" / doc.file).suffix in (".md", ".txt")  # converted to Markdown or kept


def test_flags_override_detection_and_topics(kdir: Path) -> None:
    ov = Overrides(number="124/QĐ-SLĐTBXH", title="Quy trình một cửa", effective=dt.date(2025, 4, 1),
                   topics=["btxh-tro-cap-hang-thang"])
    res = import_paths([FIX / "quyet-dinh-123.docx"], kdir, ov, into="so")
    assert res[0].ok and res[0].target == "texts/so/quyet-dinh-123.md"
    doc = load_catalog(kdir / "documents").get("124/QĐ-SLĐTBXH")
    assert doc is not None and doc.title == "Quy trình một cửa" and doc.effective == dt.date(2025, 4, 1)
    assert doc.topics == ["btxh-tro-cap-hang-thang"] and doc.type == "Quyết định"


def test_missing_number_imports_under_file_name_with_warning(kdir: Path, tmp_path: Path) -> None:
    src = tmp_path / "huong-dan-noi-bo.md"
    src.write_text("# Hướng dẫn\n\nĐiều 1. Tiếp nhận\n\nCán bộ tiếp nhận hồ sơ trong giờ hành chính.\n",
                   encoding="utf-8")
    res = import_paths([src], kdir)
    assert res[0].ok
    assert any("không tìm thấy số hiệu" in w for w in res[0].warnings)
    assert load_catalog(kdir / "documents").get("huong-dan-noi-bo") is not None


@pytest.mark.parametrize("name,code,words", [
    ("ban-scan.pdf", "scanned_pdf", "OCR"),
    ("co-mat-khau.pdf", "password", "mật khẩu"),
    ("co-mat-khau.docx", "password", "mật khẩu"),
    ("khong-cau-truc.txt", "unknown_structure", "cấu trúc"),
    ("bang-tinh.xlsx", "unsupported_format", "không được hỗ trợ"),
])
def test_bad_files_are_refused_with_a_clear_message(kdir: Path, name: str, code: str, words: str) -> None:
    res = import_paths([FIX / name], kdir)
    assert len(res) == 1 and not res[0].ok
    assert res[0].code == code and words in res[0].error
    assert not (kdir / "documents" / "texts").exists() or not any((kdir / "documents" / "texts").rglob("*.md"))


def test_converter_error_types() -> None:
    with pytest.raises(ScannedPdf):
        convert_file(FIX / "ban-scan.pdf")
    with pytest.raises(PasswordProtected):
        convert_file(FIX / "co-mat-khau.pdf")
    with pytest.raises(UnsupportedFormat):
        convert_file(FIX / "bang-tinh.xlsx")


def test_folder_import_keeps_good_files_and_reports_bad_ones(kdir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "nop-vao"
    folder.mkdir()
    for name in ("quyet-dinh-123.html", "ban-scan.pdf", "khong-cau-truc.txt"):
        shutil.copy(FIX / name, folder / name)
    (folder / "README.md").write_text("not a document\n", encoding="utf-8")
    res = import_paths([folder], kdir)
    ok = [r for r in res if r.ok]
    bad = {Path(r.path).name: r.code for r in res if not r.ok}
    assert len(ok) == 1 and ok[0].target == "texts/nop-vao/quyet-dinh-123.md"
    assert bad == {"ban-scan.pdf": "scanned_pdf", "khong-cau-truc.txt": "unknown_structure"}
    files = sorted(p.name for p in (kdir / "documents" / "texts").rglob("*") if p.is_file())
    assert files == ["quyet-dinh-123.md"]
    data = yaml.safe_load((kdir / "documents" / "catalog.yaml").read_text(encoding="utf-8"))
    assert [d["number"] for d in data["documents"]] == ["123/QĐ-SLĐTBXH"]


def test_dry_run_writes_nothing(kdir: Path) -> None:
    res = import_paths([FIX / "quyet-dinh-123.md"], kdir, dry_run=True)
    assert res[0].ok and not (kdir / "documents" / "catalog.yaml").exists()


def test_reimport_keeps_hand_written_fields(kdir: Path) -> None:
    import_paths([FIX / "quyet-dinh-123.md"], kdir)
    path = kdir / "documents" / "catalog.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["documents"][0]["status"] = "partly_superseded"
    data["documents"][0]["topics"] = ["btxh-tro-cap-hang-thang"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    import_paths([FIX / "quyet-dinh-123.md"], kdir)
    doc = load_catalog(kdir / "documents").get("123/QĐ-SLĐTBXH")
    assert doc is not None and doc.status == "partly_superseded" and doc.topics == ["btxh-tro-cap-hang-thang"]
    assert len(load_catalog(kdir / "documents").documents) == 1


def test_broken_catalogue_stops_an_import(kdir: Path) -> None:
    (kdir / "documents" / "catalog.yaml").write_text("documents:\n  - number: 1/2020/NĐ-CP\n    status: old\n",
                                                     encoding="utf-8")
    with pytest.raises(ValueError, match="status must be one of"):
        import_paths([FIX / "quyet-dinh-123.md"], kdir)


def test_needs_review_survives_a_save_and_new_imports_carry_it(kdir: Path) -> None:
    path = kdir / "documents" / "catalog.yaml"
    path.write_text("# Curated header.\n# Second line.\n\ndocuments:\n  - number: 1/2020/NĐ-CP\n    needs_review: true\n"
                    "  - number: 2/2020/NĐ-CP\n", encoding="utf-8")
    import_paths([FIX / "quyet-dinh-123.md"], kdir)  # rewrites the catalogue
    assert path.read_text(encoding="utf-8").startswith("# Curated header.\n# Second line.\n\ndocuments:\n")
    cat = load_catalog(kdir / "documents")
    assert not cat.errors
    review = {d.number: d.needs_review for d in cat.documents}
    assert review == {"1/2020/NĐ-CP": True, "2/2020/NĐ-CP": False, "123/QĐ-SLĐTBXH": True}
    path.write_text("documents:\n  - number: 1/2020/NĐ-CP\n    needs_review: 'có'\n", encoding="utf-8")
    assert any("needs_review" in e for e in load_catalog(kdir / "documents").errors)


def test_a_retired_document_leaves_the_corpus_but_its_passages_can_still_be_read(kdir: Path) -> None:
    from indexer.documents.catalog import CatalogError, save_catalog
    from indexer.documents.corpus import build_corpus, document_passages

    import_paths([FIX / "quyet-dinh-123.md"], kdir)
    docs = kdir / "documents"
    cat = load_catalog(docs)
    assert {p.document for p in build_corpus(kdir, cat, []).passages} == {"123/QĐ-SLĐTBXH"}
    doc = cat.retire("123/qđ-slđtbxh", dt.date(2026, 1, 5))
    assert doc.status == "retired" and doc.retired == dt.date(2026, 1, 5)
    with pytest.raises(CatalogError, match="đã ngừng sử dụng"):
        cat.retire("123/QĐ-SLĐTBXH", dt.date(2026, 1, 6))
    with pytest.raises(CatalogError, match="Không có văn bản"):
        cat.retire("9/2099/NĐ-CP", dt.date(2026, 1, 6))
    save_catalog(docs, cat)
    text = (docs / "catalog.yaml").read_text(encoding="utf-8")
    assert "status: retired" in text and "retired: 2026-01-05" in text
    again = load_catalog(docs)
    assert not again.errors and again.get("123/QĐ-SLĐTBXH").retired == dt.date(2026, 1, 5)  # type: ignore[union-attr]
    corpus = build_corpus(kdir, again, [])
    assert corpus.passages == [] and any("ngừng sử dụng" in w for w in corpus.warnings)
    cites = [p.citation for p in document_passages(kdir, again, [], "123/QĐ-SLĐTBXH")]
    assert any("Điều 1" in c for c in cites)
