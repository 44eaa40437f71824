"""Answers as a citizen reads them: values nobody configured are left out, with no orphan punctuation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.config import Settings
from indexer.knowledge import load_knowledge
from indexer.placeholders import GENERIC_DEPT_NAME, UNCONFIGURED, Department, drop_unconfigured, render

KNOWLEDGE = Path(__file__).resolve().parents[1] / "knowledge"
ORPHANS = [
    re.compile(r"\(\s*\)"),          # empty brackets
    re.compile(r"\s[,;.:]"),         # punctuation after a space
    re.compile(r"[,;:]\s*[.,;:]"),   # two punctuation marks in a row
    re.compile(r"^\s*[-•*]?\s*[,;.:()]*\s*$"),  # a line of punctuation only
    re.compile(r"\(\("),             # doubled brackets
]


def assert_clean(text: str) -> None:
    assert UNCONFIGURED not in text
    for line in text.split("\n"):
        if not line.strip():
            continue
        for rx in ORPHANS:
            assert not rx.search(line), (rx.pattern, line)


def test_unconfigured_values_go_with_their_sentence_or_line() -> None:
    values = Department().placeholders()
    text = render(
        "Hỏi tình trạng hồ sơ: {dept_hotline}.\n"
        "Trước khi nộp tiền, hãy hỏi {agency_labour} qua {dept_hotline}. Nếu đã bị lừa, trình báo công an.\n"
        "Nộp tại {one_stop_office} ({dept_address}) trong giờ hành chính.\n"
        "Liên hệ:\n- Đường dây nóng: {dept_hotline}\n- Email: {dept_email}\n\n"
        "Cán bộ {dept_name} sẽ gọi lại.", values)
    out = drop_unconfigured(text, values)
    assert out == ("Nếu đã bị lừa, trình báo công an.\n"
                   "Nộp tại Trung tâm Phục vụ hành chính công tỉnh trong giờ hành chính.\n\n"
                   f"Cán bộ {GENERIC_DEPT_NAME} sẽ gọi lại.")
    assert_clean(out)


def test_configured_values_are_kept_as_they_are(settings: Settings) -> None:
    values = settings.department.placeholders()
    text = render("Gọi {dept_hotline} ({dept_hours}) hoặc đến {one_stop_office}, {dept_address}.", values)
    assert drop_unconfigured(text, values) == text


@pytest.mark.parametrize("field", ["answer", "details"])
def test_every_knowledge_text_reads_clean_without_configuration(field: str) -> None:
    kb = load_knowledge(KNOWLEDGE)
    values = Department().placeholders()
    seen = 0
    for e in kb.entries:
        text = getattr(e, field)
        if not text:
            continue
        rendered = render(text, values)
        before = rendered.count(UNCONFIGURED)
        out = drop_unconfigured(rendered, values)
        assert_clean(out)
        assert out.strip(), e.id
        seen += before > 0
    assert seen > 10  # the knowledge base does use the hotline and the address
