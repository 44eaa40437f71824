"""Serving benchmark: `ldtbxh serve`'s app under uvicorn, driven by concurrent simulated citizens.

    python bench/bench_serve.py [--citizens 16] [--duration 30] [--max-requests 20000] [--fake]

Starts the app (``handlers.app:app_from_env``) with uvicorn in a child process on 127.0.0.1, on a
throw-away SQLite database, with the real model and the index of ``var/`` when one exists (else a tiny
index of ``tests/data/kb-mini`` with the fake embedder; ``--fake`` forces that). Each simulated citizen
asks the development questions (``tests/data/dev.jsonl``) one after another through ``POST /api/chat``
(a new chat every 10 questions, as the dialogue limits a chat to 20 messages a minute); the per-address
limit of the web endpoint is switched off since every citizen comes from 127.0.0.1.

Prints throughput (questions/s), latency p50/p95/p99, errors, and the server's resident memory at the
start, the middle and the end. Target (2 cores, real model): ≥ 50 questions/s, p95 < 300 ms, no errors,
memory stable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))] if s else float("nan")


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(work: Path, force_fake: bool) -> tuple[dict[str, str], str]:
    """Environment for the server: a fresh SQLite database, the real index or a tiny fake one."""
    from bot.config import load_settings
    from bot.db import upgrade
    from indexer.index import current_version

    env = {k: v for k, v in os.environ.items() if not k.startswith("LDTBXH_")}
    db = f"sqlite:///{work / 'bench.sqlite3'}"
    env.update(LDTBXH_DATABASE_URL=db, LDTBXH_WEB_RATE_PER_MINUTE="0", HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(REPO))
    settings = load_settings()
    if not force_fake and current_version(settings.index_root):
        env.update({k: v for k, v in os.environ.items() if k.startswith("LDTBXH_") and k != "LDTBXH_DATABASE_URL"})
        env["LDTBXH_WEB_RATE_PER_MINUTE"] = "0"
        what = (f"real model {settings.embedding_model} ({settings.embedding_backend}), index "
                f"{current_version(settings.index_root)} from {settings.index_root}")
    else:
        from indexer.embed import HashingEmbedder
        from indexer.index import build_index

        kb = work / "knowledge"
        shutil.copytree(REPO / "tests" / "data" / "kb-mini", kb)
        data = work / "var"
        build_index(kb, data / "index", HashingEmbedder(256))
        env.update(LDTBXH_KNOWLEDGE_DIR=str(kb), LDTBXH_DATA_DIR=str(data),
                   LDTBXH_EMBEDDING_MODEL="fake-hashing-256", LDTBXH_MIN_DENSE_FOR_ANSWER="0.0")
        why = "--fake" if force_fake else "no index in var/ (run `ldtbxh index build` for the real model)"
        what = f"FAKE embedder on tests/data/kb-mini ({why})"
    upgrade(db)
    return env, what


async def main_async(args: argparse.Namespace) -> int:
    questions = [json.loads(line)["q"] for line in args.questions.read_text(encoding="utf-8").splitlines()
                 if line.strip()]
    work = Path(tempfile.mkdtemp(prefix="ldtbxh-bench-"))
    env, what = prepare(work, args.fake)
    if args.no_cache:
        env["LDTBXH_EMBED_CACHE_SIZE"] = "0"
        what += "; question-vector cache off"
    print(f"serving: {what}")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "handlers.app:app_from_env", "--host", "127.0.0.1",
           "--port", str(port), "--log-level", "warning", "--no-access-log"]
    server = subprocess.Popen(cmd, env=env, cwd=REPO)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30,
                                     limits=httpx.Limits(max_connections=args.citizens + 2)) as client:
            t0 = time.monotonic()
            while True:
                if server.poll() is not None:
                    print("the server exited during start-up", file=sys.stderr)
                    return 1
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() - t0 > 300:
                    print("the server did not become healthy in 300 s", file=sys.stderr)
                    return 1
                await asyncio.sleep(0.2)
            print(f"server up in {time.monotonic() - t0:.1f} s (pid {server.pid}); "
                  f"{args.citizens} citizens for {args.duration:.0f} s (at most {args.max_requests} questions)")
            for q in questions[:20]:  # warm-up
                await client.post("/api/chat", json={"chat_id": f"warmup-{hash(q) % 1000:04d}x", "text": q})
            mem = {"start": rss_mb(server.pid)}
            latencies: list[float] = []
            errors: dict[str, int] = {}
            kinds: dict[str, int] = {}
            budget = [args.max_requests]
            start = time.monotonic()
            deadline = start + args.duration

            async def citizen(n: int) -> None:
                rng = random.Random(n)
                i = 0
                while time.monotonic() < deadline and budget[0] > 0:
                    budget[0] -= 1
                    chat_id = f"bench-{n:03d}-{i // 10:05d}"
                    i += 1
                    q = rng.choice(questions)
                    t = time.perf_counter()
                    try:
                        r = await client.post("/api/chat", json={"chat_id": chat_id, "text": q})
                        ms = (time.perf_counter() - t) * 1000
                        if r.status_code != 200:
                            errors[f"HTTP {r.status_code}"] = errors.get(f"HTTP {r.status_code}", 0) + 1
                            continue
                        kind = r.json()["replies"][0]["kind"]
                        kinds[kind] = kinds.get(kind, 0) + 1
                        if kind == "error":
                            errors["error reply"] = errors.get("error reply", 0) + 1
                            continue
                        latencies.append(ms)
                    except httpx.HTTPError as exc:
                        errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1

            async def sample_middle() -> None:
                await asyncio.sleep(args.duration / 2)
                mem["middle"] = rss_mb(server.pid)

            sampler = asyncio.create_task(sample_middle())
            await asyncio.gather(*(citizen(n) for n in range(args.citizens)))
            elapsed = time.monotonic() - start
            sampler.cancel()
            mem["end"] = rss_mb(server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(work, ignore_errors=True)

    n_ok = len(latencies)
    n_err = sum(errors.values())
    qps = n_ok / elapsed if elapsed else 0.0
    print(f"{n_ok} answered + {n_err} errors in {elapsed:.1f} s: {qps:.1f} questions/s")
    if latencies:
        print(f"latency ms: p50 {pct(latencies, 50):.0f}  p95 {pct(latencies, 95):.0f}  "
              f"p99 {pct(latencies, 99):.0f}  mean {statistics.mean(latencies):.0f}  max {max(latencies):.0f}")
    print("replies: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    print("errors: " + (", ".join(f"{k} {v}" for k, v in errors.items()) if errors else "none"))
    print("server RSS MB: " + "  ".join(f"{k} {v:.0f}" for k, v in mem.items()))
    ok = qps >= 50 and latencies and pct(latencies, 95) < 300 and not errors
    print("target (≥ 50 q/s, p95 < 300 ms, no errors): " + ("met" if ok else "NOT met"))
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--citizens", type=int, default=10, help="concurrent simulated citizens (1-200)")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of load (at most 600)")
    ap.add_argument("--max-requests", type=int, default=50000, help="stop after this many questions")
    ap.add_argument("--questions", type=Path, default=REPO / "tests" / "data" / "dev.jsonl")
    ap.add_argument("--fake", action="store_true", help="use a tiny index with the fake embedder")
    ap.add_argument("--no-cache", action="store_true",
                    help="switch the server's question-vector cache off (every question runs the model)")
    args = ap.parse_args()
    args.citizens = max(1, min(args.citizens, 200))
    args.duration = max(1.0, min(args.duration, 600.0))
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
