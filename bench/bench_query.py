"""Query latency benchmark: p50/p95 of Assistant.ask on this machine with the configured model.

    python bench/bench_query.py [--rounds 5] [--questions tests/data/dev-v2.jsonl]

Needs a built index (`ldtbxh index build`). Prints per-stage timings (text pipeline, embedding,
ranking, calculators: detection on every question, the computation on amount questions) so a
regression can be traced. What a calculation adds (issue 12: under 5 ms at p95) is the ``calc`` stage on
tests/data/amount-questions.jsonl.

Then, in the same run, the floor: the model alone embedding exactly what ``ask`` embeds for each question
(its processed body and asking sentences, one question per call, as ``ask`` does), and what ``ask`` costs
beyond it. The serving path has a question-vector cache (``embed_cache_size``); ``ask`` here has none, so
every round embeds every question again.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from bot.assistant import Assistant
from bot.config import load_settings
from indexer.question import parse


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--questions", type=Path, default=Path("tests/data/dev-v2.jsonl"))
    args = ap.parse_args()
    settings = load_settings()
    t0 = time.perf_counter()
    assistant = Assistant.from_settings(settings)
    assistant.warm_up()
    load_s = time.perf_counter() - t0
    qs = [json.loads(line)["q"] for line in args.questions.read_text(encoding="utf-8").splitlines() if line.strip()]
    total: list[float] = []
    stages: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for q in qs:
            t = time.perf_counter()
            out = assistant.ask(q)
            total.append((time.perf_counter() - t) * 1000)
            if out.search:
                for k, v in out.search.timings.items():
                    stages.setdefault(k, []).append(v)
    print(f"model {settings.embedding_model} ({settings.embedding_backend}); index "
          f"{assistant.retriever.index.manifest.version}, {assistant.retriever.index.manifest.units} passages")
    print(f"start-up (load + warm-up): {load_s:.1f} s")
    print(f"{len(total)} questions: p50 {pct(total, 50):.1f} ms, p95 {pct(total, 95):.1f} ms, "
          f"mean {statistics.mean(total):.1f} ms, max {max(total):.1f} ms")
    for k, v in stages.items():
        print(f"  {k:6s} p50 {pct(v, 50):.1f} ms  p95 {pct(v, 95):.1f} ms")

    # The floor, measured now, on the same questions: the views are processed outside the timing.
    r = assistant.retriever
    seg = r.index.manifest.segmented_for_model
    views = []
    for q in qs:
        views.append([r.pipeline.process(t).dense_text(seg) for t in parse(q).views])
    floor: list[float] = []
    for _ in range(args.rounds):
        for texts in views:
            t = time.perf_counter()
            r.embedder.embed(texts, r.query_prefix)
            floor.append((time.perf_counter() - t) * 1000)
    print(f"floor, the model alone on what ask embeds ({len(floor)} calls, same run): p50 {pct(floor, 50):.1f} ms, "
          f"p95 {pct(floor, 95):.1f} ms, mean {statistics.mean(floor):.1f} ms")
    beyond = [a - b for a, b in zip(total, floor, strict=True)]
    print(f"ask beyond the floor (same question, same round): p50 {pct(beyond, 50):.1f} ms, "
          f"p95 {pct(beyond, 95):.1f} ms; mean ask / mean floor = "
          f"{statistics.mean(total) / statistics.mean(floor):.2f}")


if __name__ == "__main__":
    main()
