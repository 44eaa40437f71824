"""The shipped knowledge base: complete, valid, dated, and free of the development questions."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from indexer.diacritics import fold
from indexer.knowledge import KnowledgeBase, load_knowledge

REPO = Path(__file__).resolve().parent.parent
MONEY = re.compile(r"\d{1,3}(?:\.\d{3})+\s*(?:đ\b|đồng)|\d+(?:,\d+)?\s*(?:triệu|nghìn) ?(?:đồng|đ\b)?", re.I)
FROM_DATE = re.compile(r"\btừ (?:ngày )?\d{1,2}/\d{1,2}/\d{4}|\btừ (?:ngày )?\d{1,2}/\d{4}|từ năm \d{4}", re.I)


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load_knowledge(REPO / "knowledge")


def test_shipped_knowledge_is_valid(kb: KnowledgeBase) -> None:
    assert [str(e) for e in kb.errors] == []


def test_every_topic_has_a_procedure_and_six_qa(kb: KnowledgeBase) -> None:
    counts = Counter((e.topic, e.kind) for e in kb.entries)
    missing = [t for t in kb.topics if counts[(t, "procedure")] < 1 or counts[(t, "qa")] < 6]
    assert len(kb.topics) == 43
    assert missing == []


def test_every_entry_names_legal_basis_and_date(kb: KnowledgeBase) -> None:
    undated = [e.id for e in kb.entries if not e.legal_basis or not all(x.strip() for x in e.legal_basis)]
    assert undated == []
    assert all(e.valid_from.year >= 1990 for e in kb.entries)


def test_money_figures_say_from_when(kb: KnowledgeBase) -> None:
    bad = [e.id for e in kb.entries if e.kind == "qa" and MONEY.search(e.answer) and not FROM_DATE.search(e.answer)]
    assert bad == []


def test_answers_fit_a_phone_screen(kb: KnowledgeBase) -> None:
    long = [(e.id, len(e.answer)) for e in kb.entries if e.kind == "qa" and len(e.answer) > 900]
    assert long == []


def test_paraphrases_include_unaccented_forms(kb: KnowledgeBase) -> None:
    for topic in kb.topics:
        phrasings = [p for e in kb.entries if e.topic == topic and e.kind == "qa"
                     for f, p in e.passages if f == "paraphrase"]
        assert any(p == fold(p) for p in phrasings), topic


def test_department_facts_are_placeholders(kb: KnowledgeBase) -> None:
    text = " ".join(e.answer + e.details for e in kb.entries)
    assert "{dept_hotline}" in text and "{dept_address}" in text
    assert not re.search(r"Sở Lao động[ –-]+Thương binh và Xã hội tỉnh [A-ZĐ]", text)

