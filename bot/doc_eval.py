"""Evaluate document retrieval: recall@k and MRR@10 against gold citations or gold source files.

A line of the evaluation file is ``{"q": ..., "gold": [{"document": "45/2019/QH14", "article": "Điều 25"}]}``
(a hit is any passage inside one gold article of the gold document, whatever file it came from; a
document is matched by its number or any alias in the catalogue) or ``{"q": ..., "gold_files": [...]}``
(a hit is any passage from one of those files). Questions typed without diacritics are reported apart.

With ``hints`` (what the curated entries closest to each question cite: the documents tier as the dialogue
runs it), the curated knowledge takes part, so the figures are also given without the questions that have
a near-copy among the knowledge's phrasings (folded-token Jaccard ≥ 0.6, the leak guard's rule): on those
the curated tier finds its entry too easily.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from bot.doc_search import DocSearcher, LegalHint, PassageHit
from indexer.diacritics import folded_tokens, has_diacritics
from indexer.documents.numbers import number_key, short_article


def is_hit(hit: PassageHit, row: dict[str, Any], aliases: dict[str, str]) -> bool:
    if row.get("gold_files"):
        return any(hit.source_file == f or hit.source_file.endswith("/" + f.lstrip("/")) for f in row["gold_files"])
    doc = aliases.get(number_key(hit.document), number_key(hit.document))
    for g in row.get("gold") or []:
        gdoc = aliases.get(number_key(g["document"]), number_key(g["document"]))
        if gdoc == doc and short_article(g["article"]) == short_article(hit.article):
            return True
    return False


def unaccented(q: str) -> bool:
    words = [w for w in re.findall(r"\w+", q) if w.isalpha()]
    return bool(words) and not any(has_diacritics(w) for w in words)


NEAR_COPY_JACCARD = 0.6
NEAR_COPY_MIN_TOKENS = 5


def near_copy_test(phrasings: Iterable[str]) -> Callable[[str], bool]:
    """Whether a question (of at least 5 folded tokens) has a folded-token Jaccard ≥ 0.6 with one of
    ``phrasings`` (the knowledge's questions and paraphrases): the leak guard's rule."""
    sets = [t for p in phrasings if (t := set(folded_tokens(p)))]

    def test(q: str) -> bool:
        toks = folded_tokens(q)
        qt = set(toks)
        return len(toks) >= NEAR_COPY_MIN_TOKENS and any(
            len(qt & t) / len(qt | t) >= NEAR_COPY_JACCARD for t in sets)
    return test


def evaluate_docs(searcher: DocSearcher, path: Path, k: int = 10,
                  hints: Callable[[str], Sequence[LegalHint]] | None = None,
                  near_copy: Callable[[str], bool] | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Search every question of ``path`` (with the curated tier's ``hints`` when given); ``near_copy``
    marks the questions the knowledge nearly contains, reported apart."""
    aliases = searcher.aliases
    rows: list[dict[str, Any]] = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        res = searcher.search(r["q"], k=max(k, 10), hints=hints(r["q"]) if hints else ())
        rank = next((i + 1 for i, h in enumerate(res.hits) if is_hit(h, r, aliases)), None)
        rows.append({"id": r.get("id"), "q": r["q"], "area": r.get("area"), "unaccented": unaccented(r["q"]),
                     "rank": rank, "latency_ms": round(res.latency_ms, 2),
                     "top": [h.citation for h in res.hits[:3]],
                     "gold": r.get("gold") or r.get("gold_files"),
                     **({"near_copy": near_copy(r["q"])} if near_copy else {})})
    return _metrics(rows, k), rows


def _block(rows: list[dict[str, Any]], k: int) -> dict[str, Any]:
    n = len(rows)
    if not n:
        return {"n": 0}

    def recall(at: int) -> float:
        return round(sum(1 for r in rows if r["rank"] is not None and r["rank"] <= at) / n, 4)

    mrr = sum(1 / r["rank"] for r in rows if r["rank"] is not None and r["rank"] <= 10) / n
    out = {"n": n, "recall@1": recall(1), "recall@3": recall(3), "recall@5": recall(5),
           f"recall@{k}": recall(k), "mrr@10": round(mrr, 4)}
    return out


def _metrics(rows: list[dict[str, Any]], k: int) -> dict[str, Any]:
    lat = sorted(r["latency_ms"] for r in rows) or [0.0]
    m: dict[str, Any] = {
        "all": _block(rows, k),
        "accented": _block([r for r in rows if not r["unaccented"]], k),
        "unaccented": _block([r for r in rows if r["unaccented"]], k),
        **({"no_near_copy": _block([r for r in rows if not r["near_copy"]], k),
            "no_near_copy_accented": _block([r for r in rows if not r["near_copy"] and not r["unaccented"]], k),
            "no_near_copy_unaccented": _block([r for r in rows if not r["near_copy"] and r["unaccented"]], k)}
           if rows and "near_copy" in rows[0] else {}),
        "by_area": {a: _block([r for r in rows if r["area"] == a], k)
                    for a in sorted({str(r["area"]) for r in rows if r["area"]})},
        "latency_ms": {"median": round(statistics.median(lat), 2),
                       "p95": round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 2)},
    }
    return m


def format_docs_report(m: dict[str, Any]) -> str:
    lines = []
    for name in ("all", "accented", "unaccented", "no_near_copy", "no_near_copy_accented",
                 "no_near_copy_unaccented"):
        b = m.get(name, {})
        if b.get("n"):
            rk = [key for key in b if key.startswith("recall@")]
            lines.append(f"{name:<11} n={b['n']:<4} " + "  ".join(f"{key}={b[key]:.3f}" for key in rk)
                         + f"  MRR@10={b['mrr@10']:.3f}")
    for a, b in m["by_area"].items():
        lines.append(f"  {a:<9} n={b['n']:<4} recall@1={b['recall@1']:.3f}  recall@5={b['recall@5']:.3f}  "
                     f"MRR@10={b['mrr@10']:.3f}")
    lines.append(f"latency (search incl. query processing and embedding): median {m['latency_ms']['median']} ms, "
                 f"p95 {m['latency_ms']['p95']} ms")
    return "\n".join(lines)
