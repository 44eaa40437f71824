"""Diacritic restoration speed: the shipped model's ``restore()`` per question (target < 3 ms).

    python bench/bench_diacritics.py [--rounds 3]

Restores the unaccented form of the test suite's citizen questions, best of ``--rounds`` rounds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from indexer.diacritics import DiacriticRestorer, fold  # noqa: E402
from indexer.index import SHIPPED_RESTORER  # noqa: E402
from tests.test_diacritics import CITIZEN_QUESTIONS  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    restorer = DiacriticRestorer.load(SHIPPED_RESTORER)
    queries = [fold(q) for q in CITIZEN_QUESTIONS]
    best = float("inf")
    for _ in range(args.rounds):
        start = time.perf_counter()
        for q in queries:
            restorer.restore(q)
        best = min(best, (time.perf_counter() - start) / len(queries))
    print(f"restore(): {best * 1000:.2f} ms per question (best of {args.rounds} rounds, {len(queries)} questions)")


if __name__ == "__main__":
    main()
