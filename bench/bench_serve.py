"""Serving benchmark: `ldtbxh serve`'s app under uvicorn, driven by concurrent simulated citizens.

    python bench/bench_serve.py [--citizens 16] [--duration 30] [--database sqlite|postgresql] [--cold-starts 3]
                                [--max-requests 20000] [--fake] [--replay] [--cache]

Starts the app (``handlers.server:app_from_env``) with uvicorn in a child process on 127.0.0.1, on a
throw-away database (SQLite, or a database created on the local PostgreSQL and
dropped after), with the real model and the index of ``var/`` when one exists (else a tiny
index of ``tests/data/kb-mini`` with the fake embedder; ``--fake`` forces that). Each simulated citizen
asks the realistic development questions (``tests/data/dev-v2.jsonl``: long stories included) one after
another through ``POST /api/chat`` with no think time (a new chat every 10 questions, as the dialogue
limits a chat to 20 messages a minute); the web limits (per address, per chat) are switched off, since
every citizen comes from 127.0.0.1. The question-vector cache is off unless ``--cache``.

Prints the cold start (process start -> first answered ``/api/chat``), throughput (questions/s), latency
p50/p95/p99, errors, the server's resident memory at the start, the middle and the end, the load
generator's own CPU share, and, measured in the same run once the server has stopped, the embedding floor:
the configured model alone embedding the same questions in batches of 16, and the ratio of serving
throughput to it. Targets (issue 15, 2 cores): ≥ 150 questions/s, p95 ≤ 150 ms, no errors, throughput ≥
70 % of the floor.
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
from typing import Any

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


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads) so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine so far (/proc/stat), for the share the run kept it busy."""
    try:
        v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = v[3] + (v[4] if len(v) > 4 else 0)
        return float(sum(v) - idle), float(sum(v))
    except (OSError, ValueError, IndexError):
        return float("nan"), float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def throwaway_postgres(name: str) -> str:
    """Create database ``name`` on the local PostgreSQL (dropped by :func:`drop_postgres`); its URL."""
    from sqlalchemy import create_engine, text

    eng = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    eng.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def drop_postgres(name: str) -> None:
    from sqlalchemy import create_engine, text

    eng = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    eng.dispose()


def prepare(work: Path, force_fake: bool, db: str) -> tuple[dict[str, str], str]:
    """Environment for the server: a fresh database (``db``), the real index or a tiny fake one."""
    from bot.config import load_settings
    from bot.storage.engine import upgrade
    from indexer.index import current_version

    env = {k: v for k, v in os.environ.items() if not k.startswith("LDTBXH_")}
    env.update(LDTBXH_DATABASE_URL=db, LDTBXH_WEB_RATE_PER_MINUTE="0", LDTBXH_WEB_CHAT_RATE_PER_MINUTE="0",
               HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(REPO))
    settings = load_settings()
    if not force_fake and current_version(settings.index_root):
        env.update({k: v for k, v in os.environ.items() if k.startswith("LDTBXH_") and k != "LDTBXH_DATABASE_URL"})
        env["LDTBXH_WEB_RATE_PER_MINUTE"] = env["LDTBXH_WEB_CHAT_RATE_PER_MINUTE"] = "0"
        what = (f"real model {settings.embedding_model} ({settings.embedding_backend}), index "
                f"{current_version(settings.index_root)} from {settings.index_root}")
    else:
        from indexer.index import build_index
        from tests.fakes import HashingEmbedder

        kb = work / "knowledge"
        shutil.copytree(REPO / "tests" / "data" / "kb-mini", kb)
        data = work / "var"
        build_index(kb, data / "index", HashingEmbedder(256))
        env.update(LDTBXH_KNOWLEDGE_DIR=str(kb), LDTBXH_DATA_DIR=str(data),
                   LDTBXH_TEST_EMBEDDER="tests.fakes:hashing_embedder", LDTBXH_MIN_DENSE_FOR_ANSWER="0.0")
        why = "--fake" if force_fake else "no index in var/ (run `ldtbxh index build` for the real model)"
        what = f"FAKE embedder on tests/data/kb-mini ({why})"
    upgrade(db)
    return env, what


async def main_async(args: argparse.Namespace) -> int:
    questions = [json.loads(line)["q"] for line in args.questions.read_text(encoding="utf-8").splitlines()
                 if line.strip()]
    work = Path(tempfile.mkdtemp(prefix="ldtbxh-bench-"))
    pg_name = f"ldtbxh_bench_{os.getpid()}" if args.database == "postgresql" else None
    db = throwaway_postgres(pg_name) if pg_name else f"sqlite:///{work / 'bench.sqlite3'}"
    try:
        return await run(args, questions, work, db)
    finally:
        if pg_name:
            drop_postgres(pg_name)
        shutil.rmtree(work, ignore_errors=True)


async def start_server(env: dict[str, str], question: str) -> tuple[subprocess.Popen[bytes], str, float]:
    """Start ``ldtbxh serve``'s app; wait for the first answered ``/api/chat``. (process, base URL, cold start s)"""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "handlers.server:app_from_env", "--host", "127.0.0.1",
           "--port", str(port), "--log-level", "warning", "--no-access-log"]
    t_spawn = time.monotonic()
    server = subprocess.Popen(cmd, env=env, cwd=REPO)
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        while True:
            if server.poll() is not None:
                raise RuntimeError("the server exited during start-up")
            try:
                first = await client.post("/api/chat", json={"chat_id": f"coldstart-{port}", "text": question})
                if first.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() - t_spawn > 300:
                server.kill()
                raise RuntimeError("the server did not answer in 300 s")
            await asyncio.sleep(0.05)
    return server, base, time.monotonic() - t_spawn


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()


async def run(args: argparse.Namespace, questions: list[str], work: Path, db: str) -> int:
    env, what = prepare(work, args.fake, db)
    if args.replay:
        env.update(replay_env(work / "replay", questions))
        what += "; the model REPLAYED (its vectors looked up: serving's cost beyond the model)"
    what += f"; database {db.split('://', 1)[0]}"
    if not args.cache:
        env["LDTBXH_EMBED_CACHE_SIZE"] = "0"
        what += "; question-vector cache off"
    what += "; web limits off"
    print(f"serving: {what}")
    colds = []
    for _ in range(max(0, args.cold_starts - 1)):  # the extra starts; the measured run is the last one
        extra, _base, cold = await start_server(env, questions[0])
        stop_server(extra)
        colds.append(cold)
    server, base, cold = await start_server(env, questions[0])
    colds.append(cold)
    print(f"cold start (process start -> first answer on /api/chat, HTTP 200), {len(colds)} starts: median "
          f"{statistics.median(colds):.1f} s (" + ", ".join(f"{c:.1f}" for c in colds) + ")")
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30,
                                     limits=httpx.Limits(max_connections=args.citizens + 2)) as client:
            print(f"server pid {server.pid}; "
                  f"{args.citizens} citizens for {args.duration:.0f} s (at most {args.max_requests} questions)")
            for q in questions[:20]:  # warm-up
                await client.post("/api/chat", json={"chat_id": f"warmup-{hash(q) % 1000:04d}x", "text": q})
            mem = {"start": rss_mb(server.pid)}
            latencies: list[float] = []
            errors: dict[str, int] = {}
            kinds: dict[str, int] = {}
            budget = [args.max_requests]
            start = time.monotonic()
            cpu0 = os.times()
            server_cpu0 = cpu_seconds(server.pid)
            machine0 = machine_busy()
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
            cpu1 = os.times()
            server_cpu = cpu_seconds(server.pid) - server_cpu0
            machine1 = machine_busy()
            sampler.cancel()
            mem["end"] = rss_mb(server.pid)
    finally:
        stop_server(server)

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
    gen_cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    cores = os.cpu_count() or 1
    print(f"load generator CPU: {gen_cpu:.1f} s in {elapsed:.1f} s = {100 * gen_cpu / (elapsed * cores):.0f} % of "
          f"the machine's {cores} cores")
    print(f"server CPU: {server_cpu:.1f} s in {elapsed:.1f} s = {100 * server_cpu / (elapsed * cores):.0f} % of "
          f"the machine's {cores} cores; {1000 * server_cpu / max(1, n_ok + n_err):.1f} ms of CPU per question")
    busy = (machine1[0] - machine0[0]) / max(1.0, machine1[1] - machine0[1])
    print(f"the whole machine was busy {100 * busy:.0f} % of the time (server, database, load generator, rest)")
    floor, floor_views = (float("nan"), float("nan")) if args.fake or args.replay else embedding_floor(questions)
    ratio = qps / floor if floor == floor and floor > 0 else float("nan")
    print(f"embedding floor (the model alone, batches of 16, same questions, same run): {floor:.1f} questions/s; "
          f"serving / floor = {100 * ratio:.0f} %")
    print(f"  the model alone on what the server embeds per question (the processed body and asking sentences, "
          f"batches of 16): {floor_views:.1f} questions/s; serving / that = {100 * qps / floor_views:.0f} %")
    ok = qps >= 150 and latencies and pct(latencies, 95) <= 150 and not errors and ratio >= 0.7
    print("targets (≥ 150 q/s, p95 ≤ 150 ms, no errors, ≥ 70 % of the floor): " + ("met" if ok else "NOT met"))
    return 0


def replay_env(folder: Path, questions: list[str]) -> dict[str, str]:
    """Embed with the configured model every text the server will embed for ``questions``; the environment
    that makes the server look them up instead (:mod:`bench.replay_embedder`)."""
    from bench.replay_embedder import ENV, save
    from bot.assistant import Assistant
    from bot.config import load_settings

    settings = load_settings()
    retriever = Assistant.from_settings(settings).retriever
    texts = list(dict.fromkeys(server_texts(retriever, questions)))
    vectors = retriever.embedder.embed(texts, settings.query_prefix)
    save(folder, retriever.embedder.name, int(retriever.embedder.dim),
         [(settings.query_prefix, t) for t in texts], vectors)
    return {"LDTBXH_TEST_EMBEDDER": "bench.replay_embedder:replay_embedder", ENV: str(folder)}


def server_texts(retriever: Any, questions: list[str]) -> list[str]:
    """What the server embeds for ``questions``: each one's processed body and asking sentences."""
    from indexer.question import parse

    seg = retriever.index.manifest.segmented_for_model
    return [retriever.pipeline.process(v).dense_text(seg) for q in questions for v in parse(q).views]


def embedding_floor(questions: list[str], batch: int = 16) -> tuple[float, float]:
    """Questions per second of the configured embedder alone, batched: on the questions as typed, and on
    the texts the retriever embeds for them (each question's processed body and asking sentences)."""
    from bot.assistant import Assistant
    from bot.config import load_settings
    from indexer.embed import make_embedder

    settings = load_settings()
    embedder = make_embedder(settings.embedding_model, settings.embedding_backend, settings.models_dir)
    embedder.warm_up()
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)  # as the server does: the model's pool owns the cores
    embedder.embed(questions[:batch], settings.query_prefix)

    def rate(texts: list[str]) -> tuple[float, float]:
        """(questions per second, ms of CPU per question) embedding ``texts`` for the questions."""
        t, c = time.perf_counter(), time.process_time()
        for i in range(0, len(texts), batch):
            embedder.embed(texts[i:i + batch], settings.query_prefix)
        return len(questions) / (time.perf_counter() - t), 1000 * (time.process_time() - c) / len(questions)

    retriever = Assistant.from_settings(settings, embedder=embedder).retriever
    (typed, typed_cpu), (views, views_cpu) = rate(questions), rate(server_texts(retriever, questions))
    print(f"the model alone, CPU per question: {typed_cpu:.1f} ms on the questions as typed, {views_cpu:.1f} ms on "
          "what the server embeds")
    return typed, views


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--citizens", type=int, default=16, help="concurrent simulated citizens (1-200; the issue's load is 16)")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of load (at most 600)")
    ap.add_argument("--max-requests", type=int, default=50000, help="stop after this many questions")
    ap.add_argument("--questions", type=Path, default=REPO / "tests" / "data" / "dev-v2.jsonl")
    ap.add_argument("--fake", action="store_true", help="use a tiny index with the fake embedder")
    ap.add_argument("--replay", action="store_true",
                    help="the real index, the model's vectors computed beforehand and looked up by the server: "
                         "what serving costs beyond the model")
    ap.add_argument("--cache", action="store_true",
                    help="keep the server's question-vector cache on (off by default: every question runs the model)")
    ap.add_argument("--no-cache", action="store_true", help="the default; kept for old command lines")
    ap.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite",
                    help="a throw-away SQLite file, or a throw-away database on the local PostgreSQL (127.0.0.1:5432)")
    ap.add_argument("--cold-starts", type=int, default=3, help="server starts measured (the median is printed)")
    args = ap.parse_args()
    args.citizens = max(1, min(args.citizens, 200))
    args.duration = max(1.0, min(args.duration, 600.0))
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
