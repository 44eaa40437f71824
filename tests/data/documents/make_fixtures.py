"""Make the small document fixtures of tests/test_documents*.py (run once; the outputs are committed).

    .venv/bin/python tests/data/documents/make_fixtures.py

One short decision of a provincial Department, with Chương/Điều/khoản/điểm and an annex table, written
as DOCX (python-docx), HTML, Markdown and plain text; a PDF with a text layer (Chromium prints the HTML);
a scanned PDF (an image only), a password-protected PDF (pypdf), an OLE container (what Word writes for
a password-protected document) and a text without structure.
"""

from __future__ import annotations

import base64
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent

HEADER = ("SỞ LAO ĐỘNG - THƯƠNG BINH VÀ XÃ HỘI TỈNH HÒA BÌNH", "Số: 123/QĐ-SLĐTBXH",
          "Hòa Bình, ngày 05 tháng 3 năm 2025")
TITLE = ("QUYẾT ĐỊNH", "VỀ VIỆC BAN HÀNH QUY TRÌNH TIẾP NHẬN HỒ SƠ TRỢ CẤP XÃ HỘI TẠI BỘ PHẬN MỘT CỬA")
BODY = [
    ("chapter", "Chương I"), ("chapter_title", "QUY ĐỊNH CHUNG"),
    ("article", "Điều 1. Phạm vi áp dụng"),
    ("p", "Quy trình này áp dụng cho việc tiếp nhận hồ sơ đề nghị trợ cấp xã hội hằng tháng tại Bộ phận Một cửa của Sở."),
    ("article", "Điều 2. Thời hạn giải quyết"),
    ("p", "1. Hồ sơ đầy đủ được giải quyết trong thời hạn 15 ngày làm việc kể từ ngày nhận đủ giấy tờ."),
    ("p", "2. Trường hợp phải xác minh thêm thì thời hạn được kéo dài, nhưng không quá 10 ngày làm việc."),
    ("chapter", "Chương II"), ("chapter_title", "TIẾP NHẬN HỒ SƠ"),
    ("article", "Điều 3. Thành phần hồ sơ"),
    ("p", "1. Hồ sơ gồm các giấy tờ sau đây:"),
    ("p", "a) Tờ khai của đối tượng theo mẫu;"),
    ("p", "b) Bản sao giấy xác nhận khuyết tật đối với người khuyết tật;"),
    ("p", "c) Bản sao giấy khai sinh đối với trẻ em."),
    ("p", "2. Cán bộ một cửa kiểm tra thành phần hồ sơ và viết giấy biên nhận cho người nộp."),
    ("article", "Điều 4. Hiệu lực thi hành"),
    ("p", "Quyết định này có hiệu lực thi hành kể từ ngày 15 tháng 3 năm 2025."),
    ("annex", "PHỤ LỤC I"), ("annex_title", "MỨC HỖ TRỢ CHI PHÍ ĐI LẠI KHI NỘP HỒ SƠ"),
]
TABLE = [["STT", "Khoảng cách", "Mức hỗ trợ"], ["1", "Dưới 10 km", "50.000 đồng"],
         ["2", "Từ 10 km đến dưới 30 km", "100.000 đồng"], ["3", "Từ 30 km trở lên", "150.000 đồng"]]


def markdown() -> str:
    lines = [HEADER[0], "", HEADER[1], "", HEADER[2], "", *[x for t in TITLE for x in (t, "")]]
    for _kind, text in BODY:
        lines += [text, ""]
    lines += ["| " + " | ".join(TABLE[0]) + " |", "|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in TABLE[1:]]
    return "\n".join(lines) + "\n"


def html() -> str:
    parts = [f"<p><b>{HEADER[0]}</b></p><p>{HEADER[1]}</p><p><i>{HEADER[2]}</i></p>",
             f"<h1>{TITLE[0]}</h1><h2>{TITLE[1]}</h2>"]
    for kind, text in BODY:
        tag = {"article": "h3", "chapter": "h2", "annex": "h2"}.get(kind, "p")
        parts.append(f"<{tag}>{text}</{tag}>")
    rows = "".join("<tr>" + "".join(f"<{'th' if i == 0 else 'td'}>{c}</{'th' if i == 0 else 'td'}>" for c in r)
                   + "</tr>" for i, r in enumerate(TABLE))
    parts.append(f"<table>{rows}</table>")
    return ('<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>Quyết định 123/QĐ-SLĐTBXH</title>'
            '</head><body>' + "\n".join(parts) + "</body></html>\n")


def docx(path: Path) -> None:
    from docx import Document

    d = Document()
    for line in (*HEADER, *TITLE):
        d.add_paragraph(line)
    for _kind, text in BODY:
        d.add_paragraph(text)
    t = d.add_table(rows=len(TABLE), cols=3)
    for i, r in enumerate(TABLE):
        for j, c in enumerate(r):
            t.cell(i, j).text = c
    d.save(str(path))


def chromium_pdf(html_text: str, out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.html"
        src.write_text(html_text, encoding="utf-8")
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
                        f"--print-to-pdf={out}", src.as_uri()], check=True, capture_output=True, timeout=120)


def png(width: int = 120, height: int = 60) -> bytes:
    """A grey noise picture (what a scanner gives), written with zlib alone."""
    rows = b"".join(b"\x00" + bytes(((x * 7 + y * 13) % 256) for x in range(width)) for y in range(height))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def main() -> None:
    (HERE / "quyet-dinh-123.md").write_text(markdown(), encoding="utf-8")
    (HERE / "quyet-dinh-123.txt").write_text(markdown().replace("|---|---|---|\n", ""), encoding="utf-8")
    (HERE / "quyet-dinh-123.html").write_text(html(), encoding="utf-8")
    docx(HERE / "quyet-dinh-123.docx")
    chromium_pdf(html(), HERE / "quyet-dinh-123.pdf")
    img = base64.b64encode(png()).decode()
    chromium_pdf(f'<html><body><img src="data:image/png;base64,{img}" width="600"></body></html>',
                 HERE / "ban-scan.pdf")
    from pypdf import PdfReader, PdfWriter

    w = PdfWriter()
    for page in PdfReader(str(HERE / "quyet-dinh-123.pdf")).pages:
        w.add_page(page)
    w.encrypt("mat-khau-bi-mat")
    with open(HERE / "co-mat-khau.pdf", "wb") as f:
        w.write(f)
    # Word writes a password-protected document as an OLE compound file: the same signature.
    (HERE / "co-mat-khau.docx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504)
    blob = " ".join(["người dân hỏi về chế độ chính sách và thủ tục hành chính tại địa phương"] * 120)
    (HERE / "khong-cau-truc.txt").write_text(blob + "\n", encoding="utf-8")
    (HERE / "bang-tinh.xlsx").write_bytes(b"PK\x03\x04 not a document")


if __name__ == "__main__":
    main()
