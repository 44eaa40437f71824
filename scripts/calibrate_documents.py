"""Calibrate when a question the curated tier declines is answered with a clause of the legal texts.

    .venv/bin/python scripts/calibrate_documents.py [--dev tests/data/dev-v2.jsonl]
        [--docs-eval tests/data/docs-eval.jsonl] [--folds 5] [--min-precision 0.85] [--json OUT]

Needs the curated index and the documents index built with the real model (`ldtbxh index build`,
`ldtbxh documents build`). For every question of the dev set it runs what ``Assistant.ask`` runs (small
talk, calculators, the answer policy) and, for the questions the policy declines (a plain decline, not
another agency's business), the documents tier's best clause. A document reply is **right** when the
clause's topic is the expected topic (or ``also``), **wrong** otherwise; a document reply to an
out-of-scope question (``expect`` null) is always wrong.

The three values of :func:`bot.policy.document_allowed` (the policy's scope probability, the clause's
fused score, how many of the policy's best topics the clause's topic must be among) are chosen on a grid: the setting that answers the most declines rightly with **no**
out-of-scope question answered and a precision of at least ``--min-precision`` (ties: the stricter
setting). The choice is cross-validated: k folds, chosen on k-1, counted on the held-out one; the counts
printed are the sums over the held-out folds. Then the choice on the whole set (the shipped constants
``DOC_MIN_SCOPE``/``DOC_MIN_SCORE``) and, on the documents evaluation set, how often a document reply quotes
the gold article.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.assistant import Assistant  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.doc_eval import is_hit  # noqa: E402
from bot.doc_search import PassageHit  # noqa: E402
from bot.policy import (  # noqa: E402
    DOC_MIN_SCOPE,
    DOC_MIN_SCORE,
    DOC_TOP_TOPICS,
    decide,
    document_allowed,
    document_gate,
    topic_rank,
)

SCOPE_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
TOP_GRID = (1, 2, 3, 5, 1000)
"""How many of the policy's best topics the clause's topic must be among (1000: any topic)."""
OFF = 2.0
"""A score threshold no clause reaches: the documents tier never answers."""


@dataclass
class Case:
    q: str
    expect: str | None
    also: str | None
    kind: str
    """The curated tier's reply: smalltalk, calculation, answer, choices or fallback."""
    out_of_scope: bool = False
    scope: float = 0.0
    score: float | None = None
    topic: str | None = None
    citation: str | None = None
    hit: PassageHit | None = None
    topic_rank: int | None = None
    """Where the answer policy ranks the clause's topic (0: its best topic; None: no topic)."""

    def eligible(self, min_scope: float, min_score: float, top: int) -> bool:
        return self.score is not None and document_allowed(self.kind, self.out_of_scope, self.scope, self.score,
                                                           self.topic_rank, min_scope, min_score, top)

    @property
    def right(self) -> bool:
        return self.expect is not None and self.topic is not None and self.topic in (self.expect, self.also)


def collect(a: Assistant, rows: list[dict[str, Any]]) -> list[Case]:
    """What the curated tier does with each question, and the documents tier's best clause when it declines."""
    assert a.policy is not None
    out: list[Case] = []
    for r in rows:
        q = r["q"]
        c = Case(q, r.get("expect"), r.get("also"), "")
        if a.smalltalk.match(q) is not None:
            c.kind = "smalltalk"
        else:
            res = a.retriever.search(q)
            if a._calculation(q, res) is not None:
                c.kind = "calculation"
            else:
                d = decide(res, a.policy)
                c.kind, c.out_of_scope, c.scope = d.kind, d.out_of_scope, d.scope
                if document_gate(d.kind, d.out_of_scope, d.scope, 0.0):
                    hit = a.best_passage(res)
                    if hit is not None:
                        c.score, c.topic, c.citation, c.hit = hit.score, hit.topic, hit.citation, hit
                        c.topic_rank = topic_rank(a.policy.topic_probabilities(res.topic_features),
                                                  res.topics, hit.topic)
        out.append(c)
    return out


Setting = tuple[float, float, int]
"""(min_scope, min_score, top_topics), the arguments of :func:`bot.policy.document_allowed`."""


def count(cases: list[Case], st: Setting) -> dict[str, int]:
    taken = [c for c in cases if c.eligible(*st)]
    return {"answered": len(taken), "right": sum(c.right for c in taken),
            "wrong": sum(not c.right for c in taken), "oos": sum(c.expect is None for c in taken)}


def describe(st: Setting) -> dict[str, Any]:
    return {"min_scope": st[0], "min_score": None if st[1] == OFF else round(st[1], 4), "top_topics": st[2]}


def choose(cases: list[Case], min_precision: float) -> Setting:
    """The setting answering the most declines rightly under the constraints; ties go to the stricter
    setting (fewer topics allowed, then a higher score, then a higher scope). (0.0, OFF, 1) when no
    setting answers anything under them."""
    scores = sorted({c.score for c in cases if c.score is not None})
    best: tuple[int, int, float, float] | None = None
    for top in TOP_GRID:
        for ms in SCOPE_GRID:
            for sc in scores:
                n = count(cases, (ms, sc, top))
                if n["answered"] == 0 or n["oos"] > 0 or n["right"] / n["answered"] < min_precision:
                    continue
                key = (n["right"], -top, sc, ms)
                if best is None or key > best:
                    best = key
    return (best[3], best[2], -best[1]) if best is not None else (0.0, OFF, 1)


def cross_validate(cases: list[Case], folds: int, min_precision: float, seed: int = 0) -> dict[str, Any]:
    order = list(range(len(cases)))
    random.Random(seed).shuffle(order)
    fold_of = {i: n % folds for n, i in enumerate(order)}
    total = {"answered": 0, "right": 0, "wrong": 0, "oos": 0}
    chosen = []
    for f in range(folds):
        train = [c for i, c in enumerate(cases) if fold_of[i] != f]
        test = [c for i, c in enumerate(cases) if fold_of[i] == f]
        st = choose(train, min_precision)
        n = count(test, st)
        chosen.append({**describe(st), "held_out": n})
        for k, v in n.items():
            total[k] += v
    return {"held_out": total, "per_fold": chosen}


def docs_eval(a: Assistant, path: Path, st: Setting) -> dict[str, Any]:
    """On the documents evaluation set: how many questions get a document reply, and how many of those
    quote a passage of the gold article."""
    assert a.documents is not None
    aliases = a.documents.aliases
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    cases = collect(a, rows)
    n_doc = n_hit = 0
    kinds: dict[str, int] = {}
    for r, c in zip(rows, cases, strict=True):
        kind = "document" if c.eligible(*st) else c.kind
        kinds[kind] = kinds.get(kind, 0) + 1
        if kind == "document":
            n_doc += 1
            n_hit += bool(c.hit is not None and is_hit(c.hit, r, aliases))
    return {"questions": len(rows), "replies": kinds, "document_replies": n_doc, "gold_article_quoted": n_hit,
            "recall_when_document": round(n_hit / n_doc, 3) if n_doc else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dev", type=Path, default=Path("tests/data/dev-v2.jsonl"))
    ap.add_argument("--docs-eval", type=Path, default=Path("tests/data/docs-eval.jsonl"))
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--min-precision", type=float, default=0.85)
    ap.add_argument("--json", type=Path, help="also write the figures (and every decline's clause) here")
    args = ap.parse_args()

    t0 = time.perf_counter()
    a = Assistant.from_settings(Settings())
    if a.documents is None:
        sys.exit("no documents index: run `ldtbxh documents build` first")
    a.warm_up()
    rows = [json.loads(x) for x in args.dev.read_text(encoding="utf-8").splitlines() if x.strip()]
    cases = collect(a, rows)
    declines = [c for c in cases if c.kind == "fallback" and not c.out_of_scope]
    cv = cross_validate(cases, args.folds, args.min_precision)
    st = choose(cases, args.min_precision)
    shipped = (DOC_MIN_SCOPE, DOC_MIN_SCORE, DOC_TOP_TOPICS)
    report: dict[str, Any] = {
        "dev": str(args.dev), "questions": len(cases),
        "plain_declines": len(declines), "plain_declines_in_scope": sum(c.expect is not None for c in declines),
        "agency_declines": sum(c.kind == "fallback" and c.out_of_scope for c in cases),
        "cross_validated": cv,
        "chosen_on_all": {**describe(st), **count(cases, st)},
        "shipped": {**describe(shipped), **count(cases, shipped)},
        "docs_eval": docs_eval(a, args.docs_eval, shipped),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(report, ensure_ascii=False, indent=1))
    if args.json:
        report["declines"] = [{k: v for k, v in c.__dict__.items() if k != "hit"} for c in declines]
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
