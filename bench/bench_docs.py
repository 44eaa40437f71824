"""Benchmark the documents tier: what it adds to a question and to the process.

    .venv/bin/python bench/bench_docs.py [--questions tests/data/docs-eval.jsonl] [--repeat 3]

Measures, on the current documents index (build it first with `ldtbxh documents build`):
- memory: resident set size before and after loading the documents index and its searcher;
- added latency: `search_processed(q, qvec)` for questions the curated tier has already processed and
  embedded (that is all the documents tier adds to a question), p50/p95/max; and the same with legal-basis
  hints as the dialogue passes them (`Assistant.legal_hints`: what the 8 curated entries closest to the
  question cite, weights 1, 1/2, ... 1/8; an entry citing a whole document has the Articles of it closest
  to its text lifted, found on first use and cached: the first pass over the questions is reported apart);
- the whole standalone search (query processing + embedding + ranking), for reference.
Quote figures with the machine's load: the development machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", default="tests/data/docs-eval.jsonl")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from bot.assistant import Assistant
    from bot.config import load_settings
    from bot.doc_search import DocSearcher
    from indexer.embed import make_embedder
    from indexer.text import TextPipeline

    settings = load_settings()
    embedder = make_embedder(settings.embedding_model, settings.embedding_backend, settings.models_dir)
    embedder.warm_up()
    pipe = TextPipeline.from_knowledge(settings.knowledge_dir)
    pipe.warm_up()
    pipe.process("khởi động")
    qs = [json.loads(line)["q"] for line in Path(args.questions).read_text(encoding="utf-8").splitlines() if line]
    # What the curated tier computes anyway: the processed question and its vector.
    prepared = [(pipe.process(q), embedder.embed([pipe.process(q).dense_text()], settings.query_prefix)[0])
                for q in qs]
    # The hints the dialogue would pass (the curated tier's closest entries), loaded before measuring memory.
    assistant = Assistant.from_settings(settings, embedder=embedder)
    hints_of = [assistant.legal_hints(assistant.retriever.search(q)) for q in qs]

    before = rss_mb()
    t0 = time.perf_counter()
    searcher = DocSearcher.from_settings(settings, embedder=embedder, pipeline=pipe)
    load_s = time.perf_counter() - t0
    searcher.search_processed(*prepared[0])
    after = rss_mb()

    added: list[float] = []
    for _ in range(args.repeat):
        for q, v in prepared:
            t = time.perf_counter()
            searcher.search_processed(q, v, k=10)
            added.append((time.perf_counter() - t) * 1000)
    with_hints: list[float] = []
    first_pass: list[float] = []
    for n in range(args.repeat):
        for (q, v), hints in zip(prepared, hints_of, strict=True):
            t = time.perf_counter()
            searcher.search_processed(q, v, k=10, hints=hints)
            (first_pass if n == 0 else with_hints).append((time.perf_counter() - t) * 1000)
    whole: list[float] = []
    for q in qs:
        t = time.perf_counter()
        searcher.search(q, k=10)
        whole.append((time.perf_counter() - t) * 1000)
    m = searcher.index.manifest
    out = {
        "index": {"version": m.version, "passages": m.passages, "units": m.units, "model": m.model,
                  "build_seconds": m.build_seconds, "timings": m.timings},
        "memory_mb": {"before": round(before, 1), "after": round(after, 1), "added": round(after - before, 1)},
        "load_seconds": round(load_s, 2),
        "added_latency_ms": {"p50": round(statistics.median(added), 2), "p95": round(pct(added, 0.95), 2),
                             "max": round(max(added), 2), "n": len(added)},
        "added_latency_with_hints_ms": {"p50": round(statistics.median(with_hints), 2),
                                        "p95": round(pct(with_hints, 0.95), 2), "n": len(with_hints)},
        "added_latency_with_hints_first_pass_ms": {"p50": round(statistics.median(first_pass), 2),
                                                   "p95": round(pct(first_pass, 0.95), 2),
                                                   "max": round(max(first_pass), 2), "n": len(first_pass)},
        "standalone_search_ms": {"p50": round(statistics.median(whole), 2), "p95": round(pct(whole, 0.95), 2)},
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
