"""Knowledge switch under load: citizens keep asking while an administrator rebuilds the index, switches
to the new version and rolls back, through the console; several server processes share the database.

    python bench/bench_switch.py [--servers 2] [--citizens 8] [--settle 8] [--fake] [--database-url URL]

Starts ``--servers`` uvicorn processes (``handlers.server:app_from_env``) on 127.0.0.1 that share one
database (a throw-away SQLite file, or ``--database-url`` — an empty PostgreSQL database/schema) and one
index directory, with the real model and a copy of ``knowledge/`` and of the current index of ``var/``
(``--fake``: the fake embedder on ``tests/data/kb-mini``). Simulated citizens ask the development questions
(``tests/data/dev.jsonl``) through ``POST /api/chat``, spread over the servers. Meanwhile, on server 1's
console: sign in, add a Q&A entry, rebuild in the background (the page's progress is polled), switch,
wait, roll back. The other servers follow the index folder's ``CURRENT`` pointer (``LDTBXH_RELOAD_SECONDS=1``).

Prints questions answered and errors per phase (before, rebuild, swap, after, rollback swap), p50/p95
latency per phase, and how long each server took to switch. Target: zero errors, and the swap's p95
close to the p95 before it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
ADMIN = ("bench-admin", "bench-admin-password-1")
NEW_ENTRY = """
- id: bench-hoi-dap-chuyen-doi
  topic: lien-he-gio-lam-viec
  question: Trợ lý ảo có trả lời vào ban đêm không?
  paraphrases:
    - tro ly ao co tra loi ban dem khong
  answer: Trợ lý ảo trả lời mọi lúc; cán bộ xử lý yêu cầu trong giờ hành chính ({dept_hours}).
  legal_basis: [Quy chế tiếp công dân của Sở]
  valid_from: 2026-01-01
"""


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))] if s else float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(work: Path, force_fake: bool, database_url: str | None) -> tuple[dict[str, str], str]:
    from bot.config import load_settings
    from bot.storage import Storage
    from bot.storage.engine import upgrade
    from handlers.console.security import hash_password
    from indexer.index import current_version
    from indexer.knowledge import load_knowledge

    env = {k: v for k, v in os.environ.items() if not k.startswith("LDTBXH_")}
    db = database_url or f"sqlite:///{work / 'bench.sqlite3'}"
    data = work / "var"
    kb = work / "knowledge"
    env.update(LDTBXH_DATABASE_URL=db, LDTBXH_WEB_RATE_PER_MINUTE="0", LDTBXH_RELOAD_SECONDS="1",
               LDTBXH_CONSOLE_SECURE_COOKIES="false", LDTBXH_DATA_DIR=str(data), LDTBXH_KNOWLEDGE_DIR=str(kb),
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(REPO))
    settings = load_settings()
    real = not force_fake and current_version(settings.index_root)
    if real:
        for k, v in os.environ.items():
            if k.startswith("LDTBXH_") and k not in env and k not in ("LDTBXH_DATA_DIR", "LDTBXH_KNOWLEDGE_DIR"):
                env[k] = v
        env["LDTBXH_MODEL_CACHE_DIR"] = str(settings.models_dir.resolve())
        shutil.copytree(settings.knowledge_dir, kb)
        version = current_version(settings.index_root)
        assert version
        (data / "index" / "versions").mkdir(parents=True)
        shutil.copytree(settings.index_root / "versions" / version, data / "index" / "versions" / version)
        (data / "index" / "CURRENT").write_text(version + "\n")
        what = f"real model {settings.embedding_model} ({settings.embedding_backend}), knowledge/ ({version})"
    else:
        from indexer.index import build_index
        from tests.fakes import HashingEmbedder

        shutil.copytree(REPO / "tests" / "data" / "kb-mini", kb)
        build_index(kb, data / "index", HashingEmbedder(256))
        env.update(LDTBXH_TEST_EMBEDDER="tests.fakes:hashing_embedder", LDTBXH_MIN_DENSE_FOR_ANSWER="0.0")
        what = "FAKE embedder on tests/data/kb-mini" + ("" if force_fake else " (no index in var/)")
    if load_knowledge(kb).errors:
        raise SystemExit("the knowledge base has errors: run `ldtbxh knowledge check`")
    upgrade(db)
    store = Storage(db)
    store.users.add(ADMIN[0], hash_password(ADMIN[1]), "admin", actor="bench")
    store.close()
    return env, what


@dataclass
class Sample:
    t: float
    ms: float
    ok: bool
    error: str = ""


@dataclass
class Timeline:
    marks: dict[str, float] = field(default_factory=dict)
    switched: dict[str, list[float]] = field(default_factory=dict)


async def wait_healthy(client: httpx.AsyncClient, proc: subprocess.Popen[bytes], timeout: float = 600) -> float:
    t0 = time.monotonic()
    while True:
        if proc.poll() is not None:
            raise SystemExit("a server exited during start-up")
        try:
            if (await client.get("/healthz")).status_code == 200:
                return time.monotonic() - t0
        except httpx.TransportError:
            pass
        if time.monotonic() - t0 > timeout:
            raise SystemExit("a server did not become healthy")
        await asyncio.sleep(0.2)


async def versions(clients: list[httpx.AsyncClient]) -> list[str | None]:
    out = []
    for c in clients:
        try:
            out.append((await c.get("/healthz")).json().get("index_version"))
        except httpx.HTTPError:
            out.append(None)
    return out


async def wait_all(clients: list[httpx.AsyncClient], version: str, start: float, timeout: float = 120) -> list[float]:
    """Seconds after ``start`` at which each server reported ``version``."""
    done: dict[int, float] = {}
    while len(done) < len(clients) and time.monotonic() - start < timeout:
        for i, v in enumerate(await versions(clients)):
            if v == version and i not in done:
                done[i] = time.monotonic() - start
        await asyncio.sleep(0.1)
    return [done.get(i, float("nan")) for i in range(len(clients))]


async def admin_flow(admin: httpx.AsyncClient, clients: list[httpx.AsyncClient], kb: Path, tl: Timeline,
                     settle: float) -> None:
    page = await admin.get("/console/login")
    token = CSRF_RE.search(page.text)
    assert token, "no sign-in form"
    r = await admin.post("/console/login", data={"username": ADMIN[0], "password": ADMIN[1],
                                                  "csrf_token": token.group(1)})
    assert r.status_code == 303, f"sign-in failed: {r.status_code}"

    async def csrf() -> str:
        m = CSRF_RE.search((await admin.get("/console/followups")).text)
        assert m
        return m.group(1)

    await asyncio.sleep(settle)
    old = (await versions(clients))[0]
    qa = kb / "qa" / "lien-he-gio-lam-viec.yaml"
    qa.parent.mkdir(exist_ok=True)
    with qa.open("a", encoding="utf-8") as f:  # what approving a draft does
        f.write(NEW_ENTRY)
    tl.marks["rebuild"] = time.monotonic()
    r = await admin.post("/console/knowledge/rebuild", data={"csrf_token": await csrf()})
    assert r.status_code == 303, f"rebuild refused: {r.status_code} {r.text[:300]}"
    last = -1
    while True:
        st = (await admin.get("/console/knowledge/status")).json()
        if st["percent"] // 10 != last // 10:
            print(f"  rebuild {st['state']}: {st['stage_label']} {st['done']}/{st['total']} ({st['percent']}%)")
            last = st["percent"]
        if st["state"] in ("done", "failed"):
            break
        await asyncio.sleep(0.3)
    if st["state"] != "done":
        raise SystemExit(f"rebuild failed: {st['errors'][:5]}")
    new = st["version"]
    print(f"  rebuilt {new} in {st.get('seconds')} s")
    tl.marks["rebuild_done"] = time.monotonic()
    await asyncio.sleep(settle / 2)

    tl.marks["swap"] = t = time.monotonic()
    r = await admin.post("/console/knowledge/switch", data={"csrf_token": await csrf(), "version": new})
    assert r.status_code == 303, r.text[:300]
    tl.switched["switch"] = await wait_all(clients, new, t)
    tl.marks["swap_done"] = time.monotonic() + 1.0
    await asyncio.sleep(settle)

    tl.marks["rollback"] = t = time.monotonic()
    r = await admin.post("/console/knowledge/rollback", data={"csrf_token": await csrf()})
    assert r.status_code == 303, r.text[:300]
    tl.switched["rollback"] = await wait_all(clients, old or "", t)
    tl.marks["rollback_done"] = time.monotonic() + 1.0
    await asyncio.sleep(settle / 2)
    tl.marks["end"] = time.monotonic()


async def main_async(args: argparse.Namespace) -> int:
    questions = [json.loads(line)["q"] for line in args.questions.read_text(encoding="utf-8").splitlines()
                 if line.strip()]
    work = Path(tempfile.mkdtemp(prefix="ldtbxh-bench-switch-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        env, what = prepare(work, args.fake, args.database_url)
        print(f"serving: {what}; {args.servers} server process(es), {args.citizens} citizens")
        ports = [free_port() for _ in range(args.servers)]
        for port in ports:
            cmd = [sys.executable, "-m", "uvicorn", "--factory", "handlers.server:app_from_env", "--host",
                   "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"]
            procs.append(subprocess.Popen(cmd, env=env, cwd=REPO))
        limits = httpx.Limits(max_connections=args.citizens + 4)
        clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{p}", timeout=60, limits=limits) for p in ports]
        admin = httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[0]}", timeout=120)
        for c, p in zip(clients, procs, strict=True):
            print(f"  server up in {await wait_healthy(c, p):.1f} s")
        for i in range(args.warmup * len(clients)):  # warm-up: every server answers a few questions
            await clients[i % len(clients)].post(
                "/api/chat", json={"chat_id": f"warmup{i // 10:04d}x", "text": questions[i % len(questions)]})

        samples: list[Sample] = []
        tl = Timeline()
        stop = asyncio.Event()

        async def citizen(n: int) -> None:
            rng = random.Random(n)
            i = 0
            while not stop.is_set():
                client = clients[(n + i) % len(clients)]
                chat_id = f"bench{n:03d}c{i // 10:05d}"
                i += 1
                t = time.perf_counter()
                now = time.monotonic()
                try:
                    r = await client.post("/api/chat", json={"chat_id": chat_id, "text": rng.choice(questions)})
                    ms = (time.perf_counter() - t) * 1000
                    if r.status_code != 200:
                        samples.append(Sample(now, ms, False, f"HTTP {r.status_code}"))
                    elif r.json()["replies"][0]["kind"] == "error":
                        samples.append(Sample(now, ms, False, "error reply"))
                    else:
                        samples.append(Sample(now, ms, True))
                except httpx.HTTPError as exc:
                    samples.append(Sample(now, (time.perf_counter() - t) * 1000, False, type(exc).__name__))

        tl.marks["start"] = time.monotonic()
        tasks = [asyncio.create_task(citizen(n)) for n in range(args.citizens)]
        try:
            await admin_flow(admin, clients, work / "knowledge", tl, args.settle)
        finally:
            stop.set()
            await asyncio.gather(*tasks)
            for c in [*clients, admin]:
                await c.aclose()
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)

    m = tl.marks
    phases = [("before", m["start"], m["rebuild"]), ("rebuild", m["rebuild"], m["rebuild_done"]),
              ("between", m["rebuild_done"], m["swap"]), ("swap", m["swap"], m["swap_done"]),
              ("after", m["swap_done"], m["rollback"]), ("rollback swap", m["rollback"], m["rollback_done"]),
              ("end", m["rollback_done"], m["end"] + 60)]
    print(f"{'phase':14s} {'seconds':>7s} {'answered':>8s} {'errors':>6s} {'p50 ms':>7s} {'p95 ms':>7s} {'max ms':>7s}")
    for name, a, b in phases:
        ph = [s for s in samples if a <= s.t < b]
        ok = [s.ms for s in ph if s.ok]
        err = len(ph) - len(ok)
        secs = min(b, m["end"]) - a
        print(f"{name:14s} {secs:7.1f} {len(ok):8d} {err:6d} {pct(ok, 50):7.0f} {pct(ok, 95):7.0f} "
              f"{max(ok) if ok else float('nan'):7.0f}")
    ok_all = [s for s in samples if s.ok]
    errors: dict[str, int] = {}
    for s in samples:
        if not s.ok:
            errors[s.error] = errors.get(s.error, 0) + 1
    for what_, secs_ in tl.switched.items():
        print(f"{what_}: each server serving the target version after " + ", ".join(f"{x:.1f} s" for x in secs_))
    print(f"total: {len(ok_all)} questions answered, {sum(errors.values())} errors"
          + (" (" + ", ".join(f"{k} {v}" for k, v in errors.items()) + ")" if errors else ""))
    before = [s.ms for s in samples if s.ok and m["start"] <= s.t < m["rebuild"]]
    swap = [s.ms for s in samples if s.ok and (m["swap"] <= s.t < m["swap_done"]
                                                or m["rollback"] <= s.t < m["rollback_done"])]
    print(f"p95 before {pct(before, 95):.0f} ms, during the swaps {pct(swap, 95):.0f} ms")
    return 0 if not errors else 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", type=int, default=2, help="server processes sharing the database (1-8)")
    ap.add_argument("--citizens", type=int, default=8, help="concurrent simulated citizens (1-200)")
    ap.add_argument("--settle", type=float, default=8.0, help="seconds of load between the steps")
    ap.add_argument("--warmup", type=int, default=40, help="warm-up questions per server")
    ap.add_argument("--questions", type=Path, default=REPO / "tests" / "data" / "dev.jsonl")
    ap.add_argument("--fake", action="store_true", help="use the tiny test knowledge base and the fake embedder")
    ap.add_argument("--database-url", help="an empty PostgreSQL database (default: a temporary SQLite file)")
    args = ap.parse_args()
    args.servers = max(1, min(8, args.servers))
    args.citizens = max(1, min(200, args.citizens))
    raise SystemExit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
