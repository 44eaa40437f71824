"""Calculator latency: p50/p95 of detect + respond over the amount questions (and of detect alone over
questions that are not amount questions: the cost every other question pays).

    python bench/bench_calc.py [--rounds 20] [--questions tests/data/amount-questions.jsonl] [--other FILE]

No index or model needed (the calculators are pure Python over knowledge/calculators). Run it on a quiet
machine: figures measured while other jobs run are not final. Target (issue 12): a calculation adds
under 5 ms at p95.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time
from pathlib import Path

from bot.calculators import CalculatorSet

REPO = Path(__file__).resolve().parent.parent


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--questions", type=Path, default=REPO / "tests" / "data" / "amount-questions.jsonl")
    ap.add_argument("--other", type=Path, default=REPO / "tests" / "data" / "dev.jsonl",
                    help="questions that are mostly not amount questions (detect only)")
    ap.add_argument("--knowledge", type=Path, default=REPO / "knowledge")
    args = ap.parse_args()

    t0 = time.perf_counter()
    calcs = CalculatorSet.load(args.knowledge / "calculators", today=lambda: dt.date(2026, 11, 30))
    calcs.warm_up()
    load_ms = (time.perf_counter() - t0) * 1000
    rows = [json.loads(line) for line in args.questions.read_text(encoding="utf-8").splitlines() if line.strip()]
    amount = [r["q"] for r in rows if r.get("calc")]
    other = [json.loads(line)["q"] for line in args.other.read_text(encoding="utf-8").splitlines() if line.strip()]

    full: list[float] = []
    taken = 0
    for _ in range(args.rounds):
        for q in amount:
            t = time.perf_counter()
            d = calcs.detect(q)
            if d is not None:
                calcs.respond(d)
            full.append((time.perf_counter() - t) * 1000)
        taken = sum(1 for q in amount if calcs.detect(q) is not None)
    detect_only: list[float] = []
    for _ in range(args.rounds):
        for q in other:
            t = time.perf_counter()
            calcs.detect(q)
            detect_only.append((time.perf_counter() - t) * 1000)

    print(f"{len(calcs.calculators)} calculators loaded and validated in {load_ms:.0f} ms")
    print(f"amount questions ({len(amount)} x {args.rounds}; {taken} detected): detect+respond "
          f"p50 {pct(full, 50):.2f} ms, p95 {pct(full, 95):.2f} ms, mean {statistics.mean(full):.2f} ms")
    print(f"other questions ({len(other)} x {args.rounds}): detect p50 {pct(detect_only, 50):.2f} ms, "
          f"p95 {pct(detect_only, 95):.2f} ms")


if __name__ == "__main__":
    main()
