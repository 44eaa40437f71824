"""Run the fault-injection suite (tests/test_faults.py) with chosen parameters and print its figures.

    .venv/bin/python bench/fault_run.py                       # the compressed CI run
    .venv/bin/python bench/fault_run.py --full                # burst 100, API down 300 s, database down 30 s,
                                                              # the production back-off (30 s doubling, cap 1800 s)
    .venv/bin/python bench/fault_run.py --burst 200 --api-outage 60 --db-outage 30 --backoff-base 5 --backoff-cap 60

Uses a throw-away PostgreSQL cluster (``--pg-port``, default 5434, cluster ``faultrun``) so that it can run
beside the test suite's own (5433). The figures go to stdout and, as JSON lines, to ``--report``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="the lengths of issue 13's targets")
    ap.add_argument("--burst", type=int, default=100)
    ap.add_argument("--api-outage", type=float, default=6.0)
    ap.add_argument("--db-outage", type=float, default=5.0)
    ap.add_argument("--backoff-base", type=float, default=0.5)
    ap.add_argument("--backoff-cap", type=float, default=2.0)
    ap.add_argument("--pg-port", type=int, default=5434)
    ap.add_argument("--cases", default="", help="pytest -k expression (e.g. 'api_down or database')")
    ap.add_argument("--report", type=Path, default=REPO / "var" / "fault-report.jsonl")
    args = ap.parse_args()
    if args.full:
        args.burst, args.api_outage, args.db_outage = 100, 300.0, 30.0
        args.backoff_base, args.backoff_cap = 30.0, 1800.0
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.unlink(missing_ok=True)
    env = {**os.environ, "FAULTS_BURST": str(args.burst), "FAULTS_API_OUTAGE": str(args.api_outage),
           "FAULTS_DB_OUTAGE": str(args.db_outage), "FAULTS_BACKOFF_BASE": str(args.backoff_base),
           "FAULTS_BACKOFF_CAP": str(args.backoff_cap), "FAULTS_PG_PORT": str(args.pg_port),
           "FAULTS_PG_CLUSTER": "faultrun", "FAULTS_REPORT": str(args.report)}
    cmd = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", str(REPO / "tests" / "test_faults.py")]
    if args.cases:
        cmd += ["-k", args.cases]
    t0 = time.monotonic()
    rc = subprocess.call(cmd, cwd=REPO, env=env)
    print(f"\nfault run: {time.monotonic() - t0:.0f} s, exit {rc}; parameters burst={args.burst} "
          f"api_outage={args.api_outage}s db_outage={args.db_outage}s backoff={args.backoff_base}/{args.backoff_cap}s")
    if args.report.exists():
        for line in args.report.read_text().splitlines():
            print(json.dumps(json.loads(line), ensure_ascii=False))
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
