"""The documents evaluation set (tests/data/docs-eval.jsonl) stays honest: enough questions, enough of
them long or typed without diacritics, every gold article exists in the shipped texts, and no question
copies the law's words (folded-token Jaccard to every passage of its gold article ≤ 0.4)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bot.doc_eval import unaccented
from indexer.diacritics import folded_tokens
from indexer.documents.catalog import load_catalog, load_supersession
from indexer.documents.corpus import build_corpus
from indexer.documents.numbers import number_key

REPO = Path(__file__).resolve().parent.parent
EVAL = REPO / "tests" / "data" / "docs-eval.jsonl"
MAX_JACCARD = 0.4


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return [json.loads(line) for line in EVAL.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def corpus():
    docs = REPO / "knowledge" / "documents"
    cat = load_catalog(docs)
    sups, _ = load_supersession(docs)
    return cat, build_corpus(REPO / "knowledge", cat, sups)


def _tokens(text: str) -> set[str]:
    return set(folded_tokens(text))


def test_size_and_share_of_hard_questions(rows: list[dict]) -> None:
    assert len(rows) >= 120
    hard = [r for r in rows if unaccented(r["q"]) or len(re.findall(r"\w+", r["q"])) >= 20]
    assert len(hard) / len(rows) >= 0.40
    assert {r["area"] for r in rows} == {"ncc", "btxh", "tctn", "lao-dong"}
    golds = {g["document"] for r in rows for g in r["gold"]}
    assert {"02/2020/UBTVQH14", "75/2021/NĐ-CP", "20/2021/NĐ-CP", "38/2013/QH13", "45/2019/QH14"} <= golds
    assert len({r["q"] for r in rows}) == len(rows)


def test_gold_articles_exist_and_questions_do_not_copy_the_law(rows: list[dict], corpus) -> None:
    cat, c = corpus
    by_article: dict[tuple[str, str], list[str]] = {}
    for p in c.passages:
        by_article.setdefault((number_key(p.document), p.article), []).append(p.lexical_text())
    too_close = []
    for r in rows:
        q = _tokens(r["q"])
        best = 0.0
        for g in r["gold"]:
            doc = cat.get(g["document"])
            assert doc is not None, f"{r['id']}: {g['document']} is not in the catalogue"
            texts = by_article.get((doc.key, g["article"]))
            assert texts, f"{r['id']}: {g['document']} {g['article']} has no passage"
            for t in texts:
                pt = _tokens(t)
                best = max(best, len(q & pt) / len(q | pt))
        if best > MAX_JACCARD:
            too_close.append((r["id"], round(best, 3)))
    assert not too_close, f"questions too close to their gold passage: {too_close}"
