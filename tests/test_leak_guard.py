"""The development questions must stay unseen: no knowledge phrasing may be a near-copy of one.

A dev question of 5 or more folded tokens fails the guard when any knowledge phrasing (a Q&A question or
paraphrase, an out-of-scope or small-talk example) shares a folded-token Jaccard of 0.6 or more with it;
any dev question fails when it equals a title (procedure title or Q&A question) once folded.
Folded = lower-case, diacritics removed (đ -> d), tokens of ``\\w+``.

The failure message names the knowledge side only (file, entry, phrasing), so that fixing it does not
mean reading the dev questions: rewrite the phrasing from the topic scope, or drop it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from indexer.diacritics import folded_tokens
from indexer.knowledge import KnowledgeBase, load_knowledge

REPO = Path(__file__).resolve().parent.parent
DEV_FILES = (REPO / "tests/data/dev.jsonl", REPO / "tests/data/dev-v2.jsonl")
JACCARD_LIMIT = 0.6
MIN_TOKENS = 5


def tokens(text: str) -> list[str]:
    return folded_tokens(text)


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def dev_questions() -> list[str]:
    out = []
    for path in DEV_FILES:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.append(json.loads(line)["q"])
    return out


def knowledge_phrasings(kb: KnowledgeBase) -> list[tuple[str, str]]:
    """(where, text) for every phrasing the knowledge base matches questions against."""
    out = [(f"{e.file} {e.id} ({f})", t) for e in kb.entries for f, t in e.passages
           if e.kind == "qa" and f in {"question", "paraphrase"}]
    for g in kb.out_of_scope:
        out.extend((f"knowledge/out_of_scope.yaml {g.id}", x) for x in g.examples)
    smalltalk = yaml.safe_load((REPO / "knowledge/smalltalk.yaml").read_text(encoding="utf-8"))
    for where, text in _strings(smalltalk, "knowledge/smalltalk.yaml"):
        out.append((where, text))
    return out


def _strings(data: object, where: str) -> list[tuple[str, str]]:
    if isinstance(data, str):
        return [(where, data)]
    if isinstance(data, list):
        return [x for item in data for x in _strings(item, where)]
    if isinstance(data, dict):
        return [x for k, v in data.items() for x in _strings(v, f"{where} {k}")]
    return []


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load_knowledge(REPO / "knowledge")


def near_copies(dev: list[str], phrasings: list[tuple[str, str]]) -> list[str]:
    dev_sets = [set(t) for q in dev if len(t := tokens(q)) >= MIN_TOKENS]
    hits = []
    for where, text in phrasings:
        ks = set(tokens(text))
        best = max((jaccard(ks, d) for d in dev_sets), default=0.0)
        if best >= JACCARD_LIMIT:
            hits.append(f"{where}: {text!r} (Jaccard {best:.2f})")
    return hits


def test_dev_sets_are_present() -> None:
    assert len(dev_questions()) >= 89 + 358


def test_no_knowledge_phrasing_is_a_near_copy_of_a_dev_question(kb: KnowledgeBase) -> None:
    assert kb.errors == []
    hits = near_copies(dev_questions(), knowledge_phrasings(kb))
    assert hits == [], "rewrite these phrasings from the topic scope:\n" + "\n".join(hits)


def test_no_dev_question_equals_a_title(kb: KnowledgeBase) -> None:
    titles = {" ".join(tokens(e.title)): e.id for e in kb.entries}
    hits = [titles[k] for q in dev_questions() if (k := " ".join(tokens(q))) in titles]
    assert hits == [], f"titles equal to a dev question: {hits}"


def test_the_guard_catches_a_light_edit() -> None:
    """The guard is not vacuous: a reworded copy of a question is caught, an unrelated one is not."""
    dev = ["Cho tôi hỏi mức hưởng trợ cấp thất nghiệp hằng tháng là bao nhiêu ạ?"]
    edited = ("x", "cho toi hoi muc huong tro cap that nghiep moi thang la bao nhieu")
    other = ("y", "thủ tục cấp giấy phép lao động cho người nước ngoài gồm những gì")
    assert near_copies(dev, [edited, other]) == [f"x: {edited[1]!r} (Jaccard 0.81)"]
    short = ["trợ cấp thất nghiệp"]  # under 5 tokens: only the exact-title rule applies
    assert near_copies(short, [("z", "trợ cấp thất nghiệp")]) == []
