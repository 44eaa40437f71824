"""The splitter on real legal structure: Chương/Mục/Điều/khoản/điểm, annex tables (one passage per row
with its header), quoted amendments, pháp điển pages; numbers and citations."""

from __future__ import annotations

from pathlib import Path

from indexer.documents.metadata import detect
from indexer.documents.numbers import (
    canonical_number,
    citation,
    cited_articles,
    find_numbers,
    number_key,
    parse_citation,
)
from indexer.documents.phapdien import is_phapdien_page, parse_page
from indexer.documents.structure import article_blocks, split_sections, split_structure, table_blocks

TEXTS = Path(__file__).resolve().parent.parent / "knowledge" / "documents" / "texts"
NCC = TEXTS / "nguoi-co-cong-2024"


def _article(path: Path, label: str):
    _, arts = split_structure(path.read_text(encoding="utf-8"))
    return next(a for a in arts if a.label == label)


def test_ordinance_articles_chapters_sections() -> None:
    pre, arts = split_structure((NCC / "02_2020_ubtvqh14.md").read_text(encoding="utf-8"))
    labels = [a.label for a in arts]
    assert len(arts) == 58 and labels[0] == "Điều 1" and "Điều 58" in labels
    a24 = next(a for a in arts if a.label == "Điều 24")
    assert a24.title.startswith("Chế độ ưu đãi đối với thương binh")
    assert a24.chapter.startswith("Chương II") and a24.section.startswith("Mục 6")
    assert any("Pháp lệnh số: 02/2020/UBTVQH14" in line for line in pre)


def test_clauses_and_points() -> None:
    a = _article(NCC / "02_2020_ubtvqh14.md", "Điều 24")
    blocks = article_blocks(a.lines)
    clauses = [b.clause for b in blocks if b.kind in ("clause", "point")]
    assert clauses[0] == "1" and "2" in clauses
    # Every block is phone-sized or a point of a long clause, never the whole article.
    assert all(len(b.text) < len("\n".join(a.lines)) for b in blocks)
    points = [b for b in blocks if b.kind == "point"]
    for b in points:
        assert b.point and b.lead, "a point keeps its clause's lead-in"


def test_short_clause_keeps_its_points_together() -> None:
    text = "Điều 5. Hồ sơ\n\n1. Hồ sơ gồm:\n\na) Tờ khai;\n\nb) Giấy khai sinh.\n\n2. Nộp tại xã.\n"
    _, arts = split_structure(text)
    blocks = article_blocks(arts[0].lines)
    assert [(b.kind, b.clause) for b in blocks] == [("clause", "1"), ("clause", "2")]
    assert "a) Tờ khai" in blocks[0].text and "b) Giấy khai sinh" in blocks[0].text


def test_year_is_not_a_clause_number() -> None:
    text = "Điều 2. Hiệu lực\n\nNghị định có hiệu lực từ năm\n2020. Năm sau áp dụng tiếp.\n"
    _, arts = split_structure(text)
    blocks = article_blocks(arts[0].lines)
    assert all(b.clause is None for b in blocks)


def test_annex_table_one_passage_per_row_with_header() -> None:
    annex = _article(NCC / "4804_2024_vbhn_bldtbxh.md", "Phụ lục II")
    assert annex.title.startswith("MỨC HƯỞNG TRỢ CẤP ƯU ĐÃI HẰNG THÁNG ĐỐI VỚI THƯƠNG BINH")
    rows = [b for b in article_blocks(annex.lines) if b.kind == "row"]
    # 80 rates (21 % .. 100 %), the side-by-side halves split into their own rows.
    assert len(rows) == 80
    r85 = next(b for b in rows if "85%" in b.text)
    assert r85.text == "Tỷ lệ tổn thương cơ thể: 85%; Mức hưởng trợ cấp: 7.601.000"
    assert r85.row == "65"


def test_annex_group_rows_give_context() -> None:
    annex = _article(NCC / "4804_2024_vbhn_bldtbxh.md", "Phụ lục I")
    rows = [b for b in article_blocks(annex.lines) if b.kind == "row"]
    agent_orange = [b for b in rows if "61% - 80%" in b.text and "chất độc hoá học" in b.text]
    assert agent_orange and "4.964.000" in agent_orange[0].text
    assert all(b.lead == "MỨC TRỢ CẤP, PHỤ CẤP ƯU ĐÃI HẰNG THÁNG" for b in rows)


def test_table_header_rows_and_flattened_cells() -> None:
    lines = ["| STT | Đối tượng | Mức |", "|---|---|---|", "| 1 | Bệnh binh |  |",
             "|  | Tỷ lệ 41% - 50% | 2.911.000 |", "| Tỷ lệ 51% - 60% | 3.627.000 |  |"]
    rows = table_blocks(lines)
    assert [r.text for r in rows] == ["Bệnh binh › Tỷ lệ 41% - 50%; Mức: 2.911.000",
                                      "Bệnh binh › Tỷ lệ 51% - 60%; Mức: 3.627.000"]


def test_quoted_amendment_is_not_structure() -> None:
    _, arts = split_structure((NCC / "55_2023_nd_cp.md").read_text(encoding="utf-8"))
    labels = [a.label for a in arts if a.label.startswith("Điều")]
    # The decree has three articles of its own; the "Điều 3. Mức chuẩn" it quotes stays inside Điều 1.
    assert labels == ["Điều 1", "Điều 2", "Điều 3"]
    a1 = next(a for a in arts if a.label == "Điều 1")
    blocks = article_blocks(a1.lines)
    k2 = next(b for b in blocks if b.clause == "2")
    assert "2.055.000" in k2.text and "Mức chuẩn" in k2.text


def test_signature_block_is_dropped() -> None:
    a = _article(NCC / "4804_2024_vbhn_bldtbxh.md", "Điều 16")
    assert all("Nơi nhận" not in b.text for b in article_blocks(a.lines))


def test_sections_without_articles() -> None:
    text = "# Hướng dẫn nộp hồ sơ\n\nNộp tại bộ phận một cửa.\n\n## Thời hạn\n\nMười lăm ngày làm việc.\n"
    arts = split_sections(text)
    assert [a.title for a in arts] == ["Hướng dẫn nộp hồ sơ", "Thời hạn"]


def test_phapdien_page_articles_name_their_source() -> None:
    text = (TEXTS / "phap-dien" / "chinh-sach-xa-hoi" /
            "uu-dai-nguoi-co-cong-voi-cach-mang.md").read_text(encoding="utf-8")
    assert is_phapdien_page(text)
    page = parse_page(text)
    a = next(x for x in page.articles if x.code == "Điều 6.5.PL.1")
    assert (a.document, a.label, a.effective) == ("02/2020/UBTVQH14", "Điều 1", "2021-07-01")
    assert not any("có nội dung liên quan đến Điều" in line for x in page.articles for line in x.lines)
    doc = page.documents["131/2021/NĐ-CP"]
    assert doc.type == "Nghị định" and doc.issuer == "Chính phủ" and doc.signed and doc.signed.year == 2021


def test_phapdien_glued_heading_and_table_of_contents() -> None:
    text = (TEXTS / "phap-dien" / "lao-dong" / "lao-dong.md").read_text(encoding="utf-8")
    page = parse_page(text)
    by_label = {(a.document, a.label): a for a in page.articles}
    # The page's text stops at Điều 169 of the Labour Code; Điều 190 is known from its table of contents.
    a190 = by_label[("45/2019/QH14", "Điều 190")]
    assert a190.partial and "Thời hiệu" in a190.title
    assert not by_label[("45/2019/QH14", "Điều 25")].partial


def test_numbers_and_citations() -> None:
    assert canonical_number("02_2020_UBTVQH14") == "02/2020/UBTVQH14"
    assert canonical_number("75/2021/ND-CP") == "75/2021/NĐ-CP"
    assert canonical_number("4804_2024_VBHN_BLĐTBXH") == "4804/VBHN-BLĐTBXH"
    assert canonical_number("62/2011/QĐ-TTG") == "62/2011/QĐ-TTg"
    assert number_key("75/2021/NĐ-CP") == number_key("75/2021/nd-cp")
    assert citation("Pháp lệnh", "02/2020/UBTVQH14", "Điều 24", "1") == "khoản 1 Điều 24 Pháp lệnh 02/2020/UBTVQH14"
    assert citation("Nghị định", "75/2021/NĐ-CP", "Phụ lục II", row="65") == "mục 65 Phụ lục II Nghị định 75/2021/NĐ-CP"
    parsed = parse_citation("theo điểm a khoản 2 Điều 5 Nghị định số 20/2021/NĐ-CP")
    assert parsed == {"point": "a", "clause": "2", "article": "Điều 5", "type": "Nghị định",
                      "number": "20/2021/NĐ-CP"}
    assert find_numbers("Căn cứ Luật số 38/2013/QH13 và Nghị định 28/2015/NĐ-CP ngày 12/3/2015") == \
        ["38/2013/QH13", "28/2015/NĐ-CP"]


def test_the_articles_a_legal_basis_line_cites() -> None:
    assert cited_articles("Pháp lệnh Ưu đãi người có công với cách mạng số 02/2020/UBTVQH14 (Điều 8 đến 10)") == [
        ("02/2020/UBTVQH14", frozenset({"Điều 8", "Điều 9", "Điều 10"}))]
    assert cited_articles("Nghị định 131/2021/NĐ-CP (Điều 170 khoản 14 điểm a)") == [
        ("131/2021/NĐ-CP", frozenset({"Điều 170"}))]  # a clause or point is not an Article number
    assert cited_articles("Nghị định số 20/2021/NĐ-CP (Điều 24, Điều 27 và Điều 28)") == [
        ("20/2021/NĐ-CP", frozenset({"Điều 24", "Điều 27", "Điều 28"}))]
    assert cited_articles("Nghị định 75/2021/NĐ-CP (Phụ lục I, Điều 3)") == [
        ("75/2021/NĐ-CP", frozenset({"Phụ lục I", "Điều 3"}))]
    assert cited_articles("Nghị định số 77/2024/NĐ-CP") == [("77/2024/NĐ-CP", None)]
    assert cited_articles("Luật 1/2020/QH14 (Điều 2) và Nghị định 2/2021/NĐ-CP") == [
        ("1/2020/QH14", frozenset({"Điều 2"})), ("2/2021/NĐ-CP", None)]
    assert cited_articles("Bộ luật Lao động (Điều 1 đến 500)") == []  # no number: nothing cited
    assert cited_articles("Luật 1/2020/QH14 (Điều 1 đến 500)") == [("1/2020/QH14", frozenset({"Điều 1", "Điều 500"}))]
    assert cited_articles("Luật Việc làm (sửa đổi)") == []


def test_metadata_of_a_consolidated_text() -> None:
    m = detect((NCC / "4804_2024_vbhn_bldtbxh.md").read_text(encoding="utf-8").split("---", 2)[2])
    assert m.number == "75/2021/NĐ-CP" and m.aliases == ["4804/VBHN-BLĐTBXH"]
    assert m.type == "Nghị định" and str(m.signed) == "2021-07-24" and str(m.effective) == "2021-09-15"
    assert str(m.text_date) == "2024-07-01", "its wording holds from the latest amendment"
