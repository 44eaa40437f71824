"""Tune the fusion weight and the answer-policy thresholds on a JSONL evaluation file.

    python scripts/tune.py tests/data/dev.jsonl

Runs every question once, keeps each candidate's dense and lexical features, then searches a small
grid: first the fusion (dense weight, cosine floor) for ranking quality (MRR), then the thresholds
for the policy under the product's constraints (>= 90% of out-of-scope declined, <= 3% confident
wrong answers), maximising the share of in-scope questions answered correctly and directly.
Prints the best settings as LDTBXH_* lines. Tune on the dev set, but prefer round values and
margins over a perfect dev score: unseen questions are what matters.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np

from bot.assistant import Assistant
from bot.config import load_settings
from bot.evaluation import read_jsonl
from bot.policy import PolicyParams, decide
from bot.retrieval import Candidate


def main(path: Path) -> None:
    settings = load_settings()
    a = Assistant.from_settings(settings)
    a.warm_up()
    rows = read_jsonl(path)
    covered = {e["topic"] for e in a.retriever.index.entries.values()}
    feats = []
    for r in rows:
        res = a.retriever.search(r.q, k=40)
        feats.append([(c.entry_id, c.topic, c.dense, c.lexical) for c in res.candidates])

    def rank(w: float, floor: float, ceil: float) -> list[list[Candidate]]:
        out = []
        for fs in feats:
            cs = []
            for eid, topic, dense, lex in fs:
                dn = min(1.0, max(0.0, (dense - floor) / (ceil - floor)))
                cs.append(Candidate(eid, topic, w * dn + (1 - w) * lex, dense, lex, 0.0))
            cs.sort(key=lambda c: -c.score)
            out.append(cs)
        return out

    def mrr(ranked: list[list[Candidate]]) -> tuple[float, float, float]:
        top1 = r3 = m = 0.0
        n = 0
        for r, cs in zip(rows, ranked, strict=True):
            if r.expect is None or r.expect not in covered:
                continue
            n += 1
            topics = list(dict.fromkeys(c.topic for c in cs))
            if r.expect in topics[:10]:
                k = topics.index(r.expect) + 1
                m += 1 / k
                top1 += k == 1
                r3 += k <= 3
        return top1 / n, r3 / n, m / n

    best = None
    for w, floor in itertools.product([0.2, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7], [0.75, 0.78, 0.8, 0.82]):
        t1, r3, m = mrr(rank(w, floor, 0.93))
        if best is None or (m, t1) > best[0]:
            best = ((m, t1), w, floor, r3)
        print(f"w={w:.2f} floor={floor:.2f}: top1 {t1:.3f} r@3 {r3:.3f} mrr {m:.3f}")
    assert best is not None
    (_m, _t1), w, floor, _r3 = best
    print(f"best fusion: dense_weight={w} floor={floor}")
    ranked = rank(w, floor, 0.93)

    results = []
    for at, ct, margin, md in itertools.product(np.arange(0.40, 0.80, 0.025), np.arange(0.25, 0.65, 0.025),
                                                [0.0, 0.02, 0.04, 0.06, 0.08], [0.86, 0.88, 0.89, 0.9, 0.91, 0.92]):
        if ct > at:
            continue
        p = PolicyParams(answer_threshold=float(at), choice_threshold=float(ct), answer_margin=margin,
                         min_dense_for_answer=md)
        ok = wrong = declined = oos = ins = fb_in = 0
        for r, cs in zip(rows, ranked, strict=True):
            d = decide(cs[:10], p)
            if r.expect is None:
                oos += 1
                declined += d.kind == "fallback"
                wrong += d.kind == "answer"
            elif r.expect in covered:
                ins += 1
                fb_in += d.kind == "fallback"
                if d.kind == "answer":
                    if d.best and d.best.topic == r.expect:
                        ok += 1
                    else:
                        wrong += 1
        n = oos + ins
        if declined / max(oos, 1) >= 0.9 and wrong / n <= 0.03:
            results.append((ok / ins, -fb_in / ins, float(at), float(ct), margin, md, wrong / n,
                            declined / max(oos, 1)))
    results.sort(reverse=True)
    for res in results[:10]:
        print("answered-correct {:.3f} fallback-in-scope {:.3f} answer>={:.3f} choice>={:.3f} margin {} "
              "min_dense {} wrong {:.3f} declined {:.3f}".format(res[0], -res[1], *res[2:]))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data/dev.jsonl"))
