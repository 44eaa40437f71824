"""Read a document file into Markdown text with maintained converters.

    .docx           python-docx (paragraphs and tables in document order; tables become Markdown tables)
    .pdf            pypdf (the text layer; a scanned PDF without one is refused, not guessed)
    .html, .htm     markitdown
    .md, .markdown  read as is (a YAML front matter is returned separately)
    .txt            read as is

Every refusal is a ``ConvertError`` whose message says, in Vietnamese and English, what is wrong and
what to do, so an officer importing forty files at once knows which ones to fix.
"""

from __future__ import annotations

import io
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from indexer import yamlio

SUPPORTED = (".docx", ".pdf", ".html", ".htm", ".md", ".markdown", ".txt")
_FRONT = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.S)
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
MIN_LETTERS_PER_PAGE = 40
"""A PDF page with fewer letters than this in its text layer counts as an image (scanned)."""


class ConvertError(Exception):
    """A file that cannot be read. ``code`` is stable (for scripts), ``message`` is for people."""

    code = "unreadable"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnsupportedFormat(ConvertError):
    code = "unsupported_format"


class ScannedPdf(ConvertError):
    code = "scanned_pdf"


class PasswordProtected(ConvertError):
    code = "password"


class EmptyDocument(ConvertError):
    code = "empty"


class UnknownStructure(ConvertError):
    code = "unknown_structure"


@dataclass
class Converted:
    text: str
    """Markdown (tables as ``| a | b |`` lines)."""
    front: dict[str, Any] = field(default_factory=dict)
    """The YAML front matter of a Markdown file, if any."""
    pages: int = 0


def _decode(data: bytes) -> str:
    for enc in ("utf-8-sig", "utf-16"):
        try:
            text = data.decode(enc)
            if enc == "utf-16" and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
                continue
            return text
        except UnicodeDecodeError:
            continue
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise ConvertError("Không đọc được bảng mã của tệp văn bản (unknown text encoding): lưu lại dạng UTF-8.")
    return str(best)


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    m = _FRONT.match(text)
    if not m:
        return {}, text
    try:
        front = yamlio.safe_load(m.group(1)) or {}
    except yaml.YAMLError:
        return {}, text
    return (front if isinstance(front, dict) else {}), text[m.end():]


def _cell(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("|", "/")).strip()


def _docx(data: bytes) -> Converted:
    if data.startswith(_OLE_MAGIC):
        raise PasswordProtected(
            "Tệp Word có mật khẩu hoặc ở định dạng .doc cũ (password-protected or legacy .doc): "
            "mở bằng Word, bỏ mật khẩu và lưu lại dạng .docx rồi nhập lại.")
    from docx import Document
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        doc = Document(io.BytesIO(data))
    except (PackageNotFoundError, KeyError, ValueError) as exc:
        raise ConvertError(f"Tệp .docx bị hỏng hoặc không phải Word (not a valid .docx): {exc}") from None
    lines: list[str] = []
    for block in doc.element.body.iterchildren():
        tag = block.tag.rsplit("}", 1)[-1]
        if tag == "p":
            para = Paragraph(block, doc)
            text = para.text.strip()
            if text:
                style = (para.style.name or "").lower() if para.style is not None else ""
                if style.startswith("heading"):
                    level = "".join(c for c in style if c.isdigit()) or "1"
                    text = "#" * min(int(level), 4) + " " + text
                lines.extend(["", text])
        elif tag == "tbl":
            table = Table(block, doc)
            rows = []
            for row in table.rows:
                cells = []
                prev = None
                for c in row.cells:
                    # Merged cells repeat the same object: keep one copy.
                    cells.append("" if c._tc is prev else _cell(c.text))
                    prev = c._tc
                rows.append(cells)
            if rows:
                lines.append("")
                width = max(len(r) for r in rows)
                for i, r in enumerate(rows):
                    lines.append("| " + " | ".join(r + [""] * (width - len(r))) + " |")
                    if i == 0:
                        lines.append("|" + "---|" * width)
                lines.append("")
    return Converted("\n".join(lines).strip() + "\n")


_SPLIT_GLYPHS = "[\u01a0\u01a1\u01af\u01b0\u1ea0-\u1ef9]+"
_SPLIT_RUN = re.compile(rf" ?({_SPLIT_GLYPHS}) ?")
_SPLIT_ANY = re.compile(_SPLIT_GLYPHS)
_SPLIT_SPACED = re.compile(rf"(?:^|(?<= )){_SPLIT_GLYPHS}(?= |$)", re.M)


def fix_split_glyphs(text: str) -> str:
    """Some PDF writers draw Vietnamese letters with two marks (ộ, ư, ạ...) as separate glyph runs, and
    text extraction surrounds each with spaces: "Đi ề u 1. Ph ạ m vi". When most such letters stand
    alone like that, the space on each side of them is removed."""
    text = unicodedata.normalize("NFC", text)
    total = len(_SPLIT_ANY.findall(text))
    if total < 10 or len(_SPLIT_SPACED.findall(text)) < 0.6 * total:
        return text
    return _SPLIT_RUN.sub(r"\1", text)


def _pdf(data: bytes) -> Converted:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
    except (PdfReadError, ValueError, OSError) as exc:
        raise ConvertError(f"Tệp PDF bị hỏng (damaged PDF): {exc}") from None
    if reader.is_encrypted:
        try:
            ok = bool(reader.decrypt(""))
        except Exception:  # noqa: BLE001 - pypdf raises several types for unsupported encryption
            ok = False
        if not ok:
            raise PasswordProtected(
                "Tệp PDF có mật khẩu (password-protected PDF): gỡ mật khẩu rồi nhập lại.")
    pages = []
    for page in reader.pages:
        try:
            pages.append(page.extract_text() or "")
        except Exception as exc:  # noqa: BLE001 - a broken page must not hide the others' error
            raise ConvertError(f"Không đọc được một trang PDF (unreadable page): {exc}") from None
    letters = sum(1 for t in pages for ch in t if ch.isalpha())
    if not pages or letters < MIN_LETTERS_PER_PAGE * len(pages) / 2:
        raise ScannedPdf(
            f"Tệp PDF không có lớp chữ ({len(pages)} trang, {letters} chữ cái) — có thể là bản scan "
            "(scanned PDF without a text layer): hãy nhận dạng chữ (OCR) hoặc dùng bản Word/PDF gốc.")
    return Converted(fix_split_glyphs("\n\n".join(pages)), pages=len(pages))


def _html(path: Path) -> Converted:
    from markitdown import MarkItDown

    try:
        result = MarkItDown(enable_plugins=False).convert(str(path))
    except Exception as exc:  # noqa: BLE001 - markitdown wraps parser errors in several types
        raise ConvertError(f"Không đọc được tệp HTML (unreadable HTML): {exc}") from None
    return Converted(result.text_content or "")


def convert_file(path: Path) -> Converted:
    """Read ``path`` into Markdown; raise ``ConvertError`` with a clear message if it cannot."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise UnsupportedFormat(
            f"Định dạng {suffix or '(không có đuôi)'} không được hỗ trợ (unsupported format): "
            f"dùng {', '.join(SUPPORTED)}.")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConvertError(f"Không mở được tệp (cannot open): {exc.strerror or exc}") from None
    if not data.strip():
        raise EmptyDocument("Tệp rỗng (empty file).")
    if suffix == ".docx":
        out = _docx(data)
    elif suffix == ".pdf":
        out = _pdf(data)
    elif suffix in (".html", ".htm"):
        out = _html(path)
    else:
        front, body = split_front_matter(_decode(data))
        out = Converted(body, front=front)
    if sum(1 for ch in out.text if ch.isalpha()) < 20:
        raise EmptyDocument("Tệp không có nội dung chữ (no text found).")
    return out
