"""The Department's own facts, which knowledge text refers to as placeholders (``{dept_hotline}``...).

Since 2025 provinces have been reorganising their departments (the functions of the former Sở Lao động –
Thương binh và Xã hội were split between several departments), so the Department's name, contacts and
the agency in charge of each field are configuration, never written into the knowledge base.
:class:`Department` is both the list of allowed placeholders (:data:`PLACEHOLDERS`, checked when the
knowledge base is validated) and the ``department`` group of the settings (``bot.config``), whose
values :func:`render` fills in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import BaseModel

PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")


class Department(BaseModel):
    """One field per placeholder (environment ``LDTBXH_<FIELD>``, e.g. ``LDTBXH_DEPT_HOTLINE``)."""

    dept_name: str = "Sở Lao động – Thương binh và Xã hội tỉnh (chưa cấu hình)"
    dept_address: str = "(địa chỉ trụ sở: chưa cấu hình)"
    dept_hotline: str = "(số đường dây nóng: chưa cấu hình)"
    dept_email: str = "(email: chưa cấu hình)"
    dept_hours: str = "Thứ Hai đến Thứ Sáu, sáng 7h30–11h30, chiều 13h30–17h00 (trừ ngày lễ)"
    one_stop_office: str = "Trung tâm Phục vụ hành chính công tỉnh"
    portal_url: str = "https://dichvucong.gov.vn"
    job_center: str = "Trung tâm Dịch vụ việc làm tỉnh"

    # The agency in charge of each field since the 2025 reorganisation of provincial departments.
    agency_labour: str = "Sở Nội vụ"
    """Lao động, việc làm, tiền lương, bảo hiểm thất nghiệp (policy)."""
    agency_merit: str = "Sở Nội vụ"
    """Người có công với cách mạng."""
    agency_social: str = "Sở Y tế"
    """Bảo trợ xã hội, trợ giúp xã hội."""
    agency_children: str = "Sở Y tế"
    """Trẻ em."""
    agency_vocational: str = "Sở Giáo dục và Đào tạo"
    """Giáo dục nghề nghiệp."""
    agency_poverty: str = "Sở Nông nghiệp và Môi trường"
    """Giảm nghèo."""
    agency_drug_rehab: str = "Sở Y tế"
    """Cai nghiện ma túy."""

    def placeholders(self) -> dict[str, str]:
        """Placeholder name -> configured value."""
        return {name: str(getattr(self, name)) for name in type(self).model_fields}


PLACEHOLDERS = frozenset(Department.model_fields)
"""The placeholders that knowledge text may use."""


def render(text: str, values: Mapping[str, str]) -> str:
    """Fill the placeholders (``{dept_hotline}`` ...) with ``values``; unknown ones are left as they are."""
    return PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), text)


UNCONFIGURED = "chưa cấu hình"
"""The marker of a default value the installer has not replaced (``(số đường dây nóng: chưa cấu hình)``)."""
GENERIC_DEPT_NAME = "Sở Lao động – Thương binh và Xã hội"
"""What citizens are shown instead of an unconfigured department name."""

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


def is_configured(value: str) -> bool:
    return bool(value.strip()) and UNCONFIGURED not in value


def _tidy(sentence: str) -> str:
    s = re.sub(r"\(\s*\)", "", sentence)
    s = re.sub(r"\s+([,;.:)!?])", r"\1", s)
    s = re.sub(r"([,;:])\s*([,;.:])", r"\2", s)
    s = re.sub(r"\(\s+", "(", s)
    return re.sub(r"[ \t]{2,}", " ", s).strip()


def drop_unconfigured(text: str, values: Mapping[str, str]) -> str:
    """``text`` for a citizen without the values nobody configured.

    An unconfigured department name becomes :data:`GENERIC_DEPT_NAME`; any other unconfigured value (e.g. the
    hotline) is left out with what holds it: ``(value)`` and ``, value`` lose just that part, otherwise the
    sentence (and a line that is left empty) goes; a heading line ending in ``:`` whose lines all went goes too.
    No "(chưa cấu hình)" and no orphan punctuation remain.
    """
    name = values.get("dept_name", "")
    if name and not is_configured(name):
        text = text.replace(name, GENERIC_DEPT_NAME)
    bad = sorted({v for k, v in values.items() if k != "dept_name" and v and not is_configured(v)}, key=len,
                 reverse=True)
    if not bad and UNCONFIGURED not in text:
        return text
    out: list[str] = []
    for line in text.split("\n"):
        if UNCONFIGURED not in line and not any(v in line for v in bad):
            out.append(line)
            continue
        for v in bad:
            line = line.replace(f" ({v})", "").replace(f"({v})", "").replace(f", {v},", ",").replace(f", {v}", "")
        parts = [p for p in _SENTENCE_END.split(line) if p]
        indent = re.match(r"\s*", line).group(0) if line.strip() else ""  # type: ignore[union-attr]
        kept = [p for p in parts if UNCONFIGURED not in p and not any(v in p for v in bad)]
        if kept:
            joined = _tidy(" ".join(k.strip() for k in kept))
            if joined and re.search(r"\w", joined):
                out.append(indent + joined)
                continue
        out.append("\0")  # a dropped line
    # drop a heading whose lines all went (": " with nothing after it until a blank line or the end)
    result: list[str] = []
    for i, line in enumerate(out):
        if line == "\0":
            continue
        if line.rstrip().endswith(":"):
            rest = out[i + 1:]
            following = [x for x in rest[: next((j for j, x in enumerate(rest) if not x.strip()), len(rest))]]
            if following and all(x == "\0" for x in following):
                continue
            if not following and i + 1 < len(out) and out[i + 1] == "\0":
                continue
        result.append(line)
    cleaned = "\n".join(result)
    return re.sub(r"\n{3,}", "\n\n", cleaned).strip("\n")
