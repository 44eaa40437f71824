"""Choose how much the curated entries' legal basis lifts the passages they cite, with cross-validation.

    .venv/bin/python scripts/cv_legal_hints.py [--docs-eval tests/data/docs-eval.jsonl] [--repeats 10]

Needs the curated index and the documents index built with the real model (`ldtbxh index build`,
`ldtbxh documents build`). Every question of the documents evaluation set is searched once by the curated
tier (its closest entries give the hints, :meth:`bot.assistant.Assistant.legal_hints`); then, for each
boost and each number of derived Articles (for an entry that cites a document without naming an Article:
:meth:`bot.doc_search.DocSearcher.closest_articles`) of the grid, the documents tier ranks the passages and the rank of the
first passage of a gold Article gives MRR@10. The boost is chosen on 4 folds and counted on the fifth (5
folds, repeated with ``--repeats`` shuffles); the held-out MRR@10 is printed with and without diacritics
and on the questions that have no near-copy in the knowledge (the leak guard's rule), beside the figures
without hints and the setting chosen on the whole set (the shipped ``DocSearchParams.cited_boost`` and
``derived_articles``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.assistant import Assistant  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.doc_eval import is_hit, near_copy_test, unaccented  # noqa: E402
from bot.doc_search import DocSearcher  # noqa: E402
from indexer.knowledge import load_knowledge  # noqa: E402

BOOSTS = [0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.6]
DERIVED = [0, 1, 2, 3]
"""How many Articles an entry citing a whole document lifts (``DocSearchParams.derived_articles``)."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs-eval", type=Path, default=Path("tests/data/docs-eval.jsonl"))
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()

    settings = load_settings()
    assistant = Assistant.from_settings(settings)
    assistant.warm_up()
    searcher = DocSearcher.from_settings(settings, embedder=assistant.retriever.embedder)
    searcher.warm_up()
    aliases = searcher.aliases
    kb = load_knowledge(settings.knowledge_dir)
    near = near_copy_test(t for e in kb.entries for f, t in e.passages if f in ("question", "paraphrase"))
    rows = [json.loads(x) for x in args.docs_eval.read_text(encoding="utf-8").splitlines() if x.strip()]

    grid = [(b, m) for b in BOOSTS for m in DERIVED]
    scores = np.zeros((len(rows), len(grid)))
    for i, r in enumerate(rows):
        res = assistant.retriever.search(r["q"])
        qvec = res.query_vector
        if qvec is None:
            qvec = searcher.embedder.embed([res.query.dense_text()], searcher.query_prefix)[0]
        hints = assistant.legal_hints(res)
        for j, (boost, derived) in enumerate(grid):
            searcher.params.cited_boost, searcher.params.derived_articles = boost, derived
            hits = searcher.search_processed(res.query, qvec, k=10, hints=hints)
            rank = next((n + 1 for n, h in enumerate(hits) if is_hit(h, r, aliases)), None)
            scores[i, j] = 1 / rank if rank else 0.0
    un = np.array([unaccented(r["q"]) for r in rows])
    clean = np.array([not near(r["q"]) for r in rows])

    held = []
    for seed in range(args.repeats):
        fold = np.random.default_rng(seed).permutation(len(rows)) % 5
        oof = np.zeros(len(rows))
        for f in range(5):
            train = fold != f
            oof[~train] = scores[~train, int(np.argmax(scores[train].mean(axis=0)))]
        held.append(oof)
    cv = np.mean(held, axis=0)

    def fig(v: np.ndarray) -> str:
        return (f"accented {v[~un].mean():.3f}, unaccented {v[un].mean():.3f}; without near-copies: "
                f"accented {v[~un & clean].mean():.3f}, unaccented {v[un & clean].mean():.3f} "
                f"(n = {int((~un).sum())}, {int(un.sum())}, {int((~un & clean).sum())}, {int((un & clean).sum())})")

    print("MRR@10 without hints:      " + fig(scores[:, grid.index((0.0, 0))]))
    print("MRR@10 without derived Articles, boost 0.3: " + fig(scores[:, grid.index((0.3, 0))]))
    print(f"MRR@10 cross-validated (5 folds × {args.repeats}): " + fig(cv))
    best = int(np.argmax(scores.mean(axis=0)))
    print(f"chosen on the whole set: boost {grid[best][0]}, derived Articles {grid[best][1]}: "
          + fig(scores[:, best]))


if __name__ == "__main__":
    main()
