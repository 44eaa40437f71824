"""Fault injection: the server as a real subprocess on a throw-away PostgreSQL cluster (port 5433), fakes of
the Telegram Bot API and the Zalo OA API that fail on command (tests/fault_harness.py).

Figures are printed (``FAULTS:`` lines) and compared with the targets of issue 13:

* kill -9 in the middle of a burst of acknowledged updates per channel: 0 lost; duplicates (a send in
  flight at the kill) at most 1 per channel per kill;
* duplicated and replayed events: answered once, across a restart;
* the APIs down (500, then 429 with retry_after, then timeouts), then back: every reply delivered, once,
  in order per chat;
* two server processes on one database, every event delivered to both: 0 duplicates, 0 lost;
* the database down under traffic: 0 questions lost (each answered, the web page told to retry).

Parameters (environment, so that a full-length run is possible; CI runs the compressed defaults):
``FAULTS_BURST`` (updates per channel, default 100), ``FAULTS_API_OUTAGE`` (seconds, default 6),
``FAULTS_DB_OUTAGE`` (seconds, default 5), ``FAULTS_BACKOFF_BASE`` / ``FAULTS_BACKOFF_CAP`` (seconds of the
outbox back-off, default 0.5 / 2), ``FAULTS_PG_PORT`` / ``FAULTS_PG_CLUSTER`` (the throw-away cluster,
default 5433 / fault). ``bench/fault_run.py`` runs the suite with them.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from bot.storage.engine import upgrade
from bot.storage.models import InboxEvent, RequestLog
from tests.fault_harness import (
    FakePlatforms,
    FaultCluster,
    Platform,
    ServerProcess,
    quoted,
    run_parallel,
    server_env,
    telegram_update,
    zalo_event,
)
from tests.support import MINI_KB, build_fake_index, make_settings

pytestmark = pytest.mark.faults

BURST = int(os.environ.get("FAULTS_BURST", "100"))
API_OUTAGE = float(os.environ.get("FAULTS_API_OUTAGE", "6"))
DB_OUTAGE = float(os.environ.get("FAULTS_DB_OUTAGE", "5"))
BACKOFF_BASE = float(os.environ.get("FAULTS_BACKOFF_BASE", "0.5"))
BACKOFF_CAP = float(os.environ.get("FAULTS_BACKOFF_CAP", "2"))
PG_PORT = int(os.environ.get("FAULTS_PG_PORT", "5433"))
PG_CLUSTER = os.environ.get("FAULTS_PG_CLUSTER", "fault")
REPORT = os.environ.get("FAULTS_REPORT")
"""A JSON file the figures are appended to (bench/fault_run.py)."""

_ids = itertools.count(int(time.time()) % 100000 * 1000)


def report(record_property: Callable[[str, object], None], name: str, **figures: Any) -> None:
    """The case's figures: printed in the run's "figures" section (tests/conftest.py; on every worker)."""
    line = f"FAULTS: {name}: " + ", ".join(f"{k}={v}" for k, v in figures.items())
    record_property("figures", line)
    if REPORT:
        with open(REPORT, "a", encoding="utf-8") as f:
            f.write(json.dumps({"case": name, **figures}, ensure_ascii=False) + "\n")


# --- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> Iterator[FaultCluster]:
    why = FaultCluster.available()
    if why:
        pytest.skip(why)
    c = FaultCluster(name=PG_CLUSTER, port=PG_PORT)
    try:
        c.create()
    except Exception as exc:
        c.drop()
        pytest.skip(f"no throw-away PostgreSQL cluster could be created ({exc})")
    try:
        yield c
    finally:
        c.drop()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small knowledge base, indexed with the fake embedder, in a data directory servers share."""
    root = tmp_path_factory.mktemp("faults")
    settings = make_settings(root, MINI_KB)
    build_fake_index(settings)
    return root


@pytest.fixture(scope="module")
def fakes() -> Iterator[FakePlatforms]:
    f = FakePlatforms().start()
    try:
        yield f
    finally:
        f.close()


@dataclass
class Env:
    db_url: str
    root: Path
    fakes: FakePlatforms
    servers: list[ServerProcess]

    def server(self, **serve: Any) -> ServerProcess:
        env = server_env(db_url=self.db_url, data_dir=self.root / "var", knowledge=MINI_KB, fakes=self.fakes,
                         outbox_backoff_base_seconds=BACKOFF_BASE, outbox_backoff_cap_seconds=BACKOFF_CAP, **serve)
        srv = ServerProcess(env, self.root / f"server-{len(self.servers)}.log")
        self.servers.append(srv)
        return srv

    def count(self, model: Any, *where: Any) -> int:
        engine = create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                return int(conn.execute(select(func.count()).select_from(model).where(*where)).scalar() or 0)
        finally:
            engine.dispose()


@pytest.fixture
def env(cluster: FaultCluster, site: Path, fakes: FakePlatforms, request: pytest.FixtureRequest) -> Iterator[Env]:
    name = "faults_" + request.node.name.replace("test_", "")[:40]
    url = cluster.create_database(name)
    upgrade(url)
    fakes.mode = None
    e = Env(url, site, fakes, [])
    try:
        yield e
    finally:
        fakes.mode = None
        for s in e.servers:
            s.kill()
        # the Zalo spool is per data directory: leave none for the next test
        spool = site / "var" / "spool" / "zalo.jsonl"
        if spool.exists():
            spool.unlink()


# --- helpers -----------------------------------------------------------------------------------------


def questions(n: int, prefix: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """n Telegram updates and n Zalo events, each from its own chat."""
    tg = [telegram_update(next(_ids), 10_000_000 + next(_ids), f"{prefix} xin chào {i}") for i in range(n)]
    zl = [zalo_event(f"{prefix}-{uuid.uuid4().hex[:12]}", f"8{next(_ids):012d}", f"{prefix} xin chào {i}")
          for i in range(n)]
    return tg, zl


def chats_of(tg: list[dict[str, Any]], zl: list[dict[str, Any]]) -> dict[str, list[str]]:
    return {"telegram": [str(u["message"]["chat"]["id"]) for u in tg],
            "zalo": [str(e["sender"]["id"]) for e in zl]}


def tally(fakes: FakePlatforms, chats: dict[str, list[str]], per_question: int = 1) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for channel, ids in chats.items():
        got = fakes.per_chat(channel)
        out[channel] = {"questions": len(ids),
                        "lost": sum(1 for c in ids if len(got.get(c, [])) < per_question),
                        "duplicates": sum(max(0, len(got.get(c, [])) - per_question) for c in ids)}
    return out


def wait_answered(fakes: FakePlatforms, chats: dict[str, list[str]], timeout: float, per_question: int = 1) -> None:
    def done() -> bool:
        return all(tally(fakes, chats, per_question)[ch]["lost"] == 0 for ch in chats)

    fakes.wait(lambda: _unlocked(done), timeout)
    time.sleep(1.5)  # anything sent twice arrives now


def _unlocked(fn: Any) -> bool:
    # FakePlatforms.wait holds its lock; tally takes it again (a Condition's lock is an RLock)
    return bool(fn())


def replies_per_question(env: Env, srv: ServerProcess) -> int:
    """How many messages the assistant sends for one of the suite's questions (calibrated once)."""
    p = Platform([srv.url])
    tg, zl = questions(1, "calib")
    p.telegram(tg[0], time.monotonic() + 30)
    chat = str(tg[0]["message"]["chat"]["id"])
    env.fakes.wait(lambda: len(env.fakes.per_chat("telegram").get(chat, [])) >= 1, 30)
    time.sleep(1.0)
    p.close()
    n = len(env.fakes.per_chat("telegram").get(chat, []))
    assert n >= 1, srv.log_tail()
    return n


# --- the cases -----------------------------------------------------------------------------------------


def test_kill_9_mid_burst_loses_nothing(env: Env, record_property: Callable[[str, object], None]) -> None:
    srv = env.server().start()
    k = replies_per_question(env, srv)
    tg, zl = questions(BURST, "kill")
    chats = chats_of(tg, zl)
    platform = Platform([srv.url])
    deadline = time.monotonic() + 120
    jobs = [lambda u=u: platform.telegram(u, deadline) for u in tg] + [lambda e=e: platform.zalo(e, deadline)
                                                                      for e in zl]
    sender = threading.Thread(target=run_parallel, args=(jobs, 16))
    sender.start()
    # kill -9 once half the burst is acknowledged: the rest is still arriving, the acknowledged part is
    # being answered
    while len(platform.acked) < BURST and sender.is_alive():
        time.sleep(0.005)
    acked_at_kill = len(platform.acked)
    srv.kill()
    answered_at_kill = {ch: sum(1 for c in ids if env.fakes.per_chat(ch).get(c)) for ch, ids in chats.items()}
    srv.start()  # the same port: the platforms' retries reach the new process
    sender.join(150)
    # a second kill -9 while the acknowledged burst is being answered and sent
    answered = lambda: sum(1 for ch, ids in chats.items() for c in ids if env.fakes.per_chat(ch).get(c))  # noqa: E731
    env.fakes.wait(lambda: answered() >= BURST, 60)
    answered_at_second_kill = answered()
    srv.kill()
    srv.start()
    wait_answered(env.fakes, chats, 90, k)
    platform.close()
    t = tally(env.fakes, chats, k)
    kills = 2
    report(record_property, "kill-9 mid-burst", burst_per_channel=BURST, kills=kills, acknowledged_at_first_kill=acked_at_kill,
           answered_at_first_kill=answered_at_kill, answered_at_second_kill=answered_at_second_kill,
           telegram_lost=t["telegram"]["lost"], telegram_duplicates=t["telegram"]["duplicates"],
           zalo_lost=t["zalo"]["lost"], zalo_duplicates=t["zalo"]["duplicates"])
    assert t["telegram"]["lost"] == 0 and t["zalo"]["lost"] == 0, srv.log_tail()
    assert t["telegram"]["duplicates"] <= kills and t["zalo"]["duplicates"] <= kills


def test_duplicates_and_replays_are_answered_once(env: Env, record_property: Callable[[str, object], None]) -> None:
    srv = env.server().start()
    k = replies_per_question(env, srv)
    tg, zl = questions(20, "dup")
    chats = chats_of(tg, zl)
    platform = Platform([srv.url])
    deadline = time.monotonic() + 60
    jobs = [lambda u=u: platform.telegram(u, deadline) for u in tg for _ in range(2)]
    jobs += [lambda e=e: platform.zalo(e, deadline) for e in zl for _ in range(2)]
    run_parallel(jobs, 8)
    wait_answered(env.fakes, chats, 60, k)
    srv.stop()  # a restart forgets everything held in memory
    srv.start()
    statuses = [platform._post(srv.url, "/telegram/webhook", json.dumps(u).encode(),
                               {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": "fault-secret"})
                for u in tg[:5]]
    from handlers.zalo import signature

    for e in zl[:5]:
        body = json.dumps(e).encode()
        statuses.append(platform._post(srv.url, "/zalo/webhook", body, {
            "Content-Type": "application/json",
            "X-ZEvent-Signature": signature("4321987650001", body, e["timestamp"], "oa-secret-fault")}))
    time.sleep(2.0)
    platform.close()
    t = tally(env.fakes, chats, k)
    report(record_property, "duplicates and replays", events_per_channel=20, each_sent=2, replayed_after_restart=10,
           replay_statuses=sorted(set(statuses)), telegram_duplicates=t["telegram"]["duplicates"],
           zalo_duplicates=t["zalo"]["duplicates"], lost=t["telegram"]["lost"] + t["zalo"]["lost"])
    assert statuses[:5] == [200] * 5 and statuses[5:] == [409] * 5
    assert t["telegram"]["duplicates"] == 0 and t["zalo"]["duplicates"] == 0
    assert t["telegram"]["lost"] == 0 and t["zalo"]["lost"] == 0


def test_api_down_then_back_delivers_every_reply_once_in_order(env: Env, record_property: Callable[[str, object], None]) -> None:
    srv = env.server().start()
    k = replies_per_question(env, srv)
    platform = Platform([srv.url])
    n_chats, per_chat = 10, 3
    tg_chats = [10_000_000 + next(_ids) for _ in range(n_chats)]
    zl_chats = [f"8{next(_ids):012d}" for _ in range(n_chats)]
    asked: dict[tuple[str, str], list[str]] = {}
    start = time.monotonic()
    env.fakes.mode = "500"

    def citizen_tg(chat: int, pause: float = API_OUTAGE / (per_chat * 2)) -> None:
        for j in range(per_chat):
            text = f"api {chat} câu {j}"
            asked.setdefault(("telegram", str(chat)), []).append(text)
            platform.telegram(telegram_update(next(_ids), chat, text), time.monotonic() + 60)
            time.sleep(pause)

    def citizen_zl(chat: str, pause: float = API_OUTAGE / (per_chat * 2)) -> None:
        for j in range(per_chat):
            text = f"api {chat} câu {j}"
            asked.setdefault(("zalo", chat), []).append(text)
            platform.zalo(zalo_event(uuid.uuid4().hex, chat, text), time.monotonic() + 60)
            time.sleep(pause)

    def outage() -> None:  # 500, then 429 (retry_after) / 500, then requests that hang
        for mode in ("500", "429", "timeout"):
            env.fakes.mode = mode
            time.sleep(API_OUTAGE / 3)
        env.fakes.mode = None

    breaker = threading.Thread(target=outage)
    breaker.start()
    run_parallel([lambda c=c: citizen_tg(c) for c in tg_chats] + [lambda c=c: citizen_zl(c) for c in zl_chats], 20)
    breaker.join()
    back = time.monotonic()
    # traffic goes on after the recovery: a new citizen per channel (their answer shows the API is back)
    tg_chats.append(10_000_000 + next(_ids))
    zl_chats.append(f"8{next(_ids):012d}")
    run_parallel([lambda: citizen_tg(tg_chats[-1], 0.2), lambda: citizen_zl(zl_chats[-1], 0.2)], 2)
    chats = {"telegram": [str(c) for c in tg_chats], "zalo": zl_chats}
    wait_answered(env.fakes, chats, 60 + 3 * BACKOFF_CAP, k * per_chat)
    platform.close()
    t = tally(env.fakes, chats, k * per_chat)
    out_of_order = 0
    for (channel, chat), texts in asked.items():
        got = [q for q in (quoted(m) for m in env.fakes.per_chat(channel).get(chat, [])) if q]
        firsts = list(dict.fromkeys(got))  # a question's replies in a row
        if firsts != texts:
            out_of_order += 1
    report(record_property, "API down then back", outage_seconds=API_OUTAGE, modes="500,429,timeout",
           backoff_base=BACKOFF_BASE, backoff_cap=BACKOFF_CAP, refused_sends=env.fakes.refused,
           replies_expected=2 * (n_chats + 1) * per_chat * k, lost=t["telegram"]["lost"] + t["zalo"]["lost"],
           duplicates=t["telegram"]["duplicates"] + t["zalo"]["duplicates"], chats_out_of_order=out_of_order,
           seconds_to_deliver_after_recovery=round(time.monotonic() - back - 1.5, 1),
           total_seconds=round(time.monotonic() - start, 1))
    assert t["telegram"]["lost"] == 0 and t["zalo"]["lost"] == 0, srv.log_tail()
    assert t["telegram"]["duplicates"] == 0 and t["zalo"]["duplicates"] == 0
    assert out_of_order == 0


def test_two_processes_on_one_database_never_answer_twice(env: Env, record_property: Callable[[str, object], None]) -> None:
    a, b = env.server().start(), env.server().start()
    k = replies_per_question(env, a)
    n = max(20, BURST // 2)
    tg, zl = questions(n, "two")
    chats = chats_of(tg, zl)
    pa, pb = Platform([a.url]), Platform([b.url])
    deadline = time.monotonic() + 60
    # every event reaches both processes (a platform retry landing on the other host), concurrently
    jobs = [lambda u=u, p=p: p.telegram(u, deadline) for u in tg for p in (pa, pb)]
    jobs += [lambda e=e, p=p: p.zalo(e, deadline) for e in zl for p in (pa, pb)]
    run_parallel(jobs, 16)
    wait_answered(env.fakes, chats, 60, k)
    pa.close()
    pb.close()
    t = tally(env.fakes, chats, k)
    report(record_property, "two processes, one database", events_per_channel=n, each_delivered_to_both=True,
           telegram_duplicates=t["telegram"]["duplicates"], zalo_duplicates=t["zalo"]["duplicates"],
           lost=t["telegram"]["lost"] + t["zalo"]["lost"])
    assert t["telegram"]["duplicates"] == 0 and t["zalo"]["duplicates"] == 0
    assert t["telegram"]["lost"] == 0 and t["zalo"]["lost"] == 0


def test_database_down_loses_no_question(env: Env, cluster: FaultCluster, record_property: Callable[[str, object], None]) -> None:
    srv = env.server().start()
    k = replies_per_question(env, srv)
    platform = Platform([srv.url], retry_every=0.5)
    web = httpx.Client(timeout=10)
    tg_asked: list[dict[str, Any]] = []
    zl_asked: list[dict[str, Any]] = []
    web_answers: dict[str, int] = {}
    web_told_retry = 0
    stop = threading.Event()
    lock = threading.Lock()

    def ask_web(i: int) -> None:
        nonlocal web_told_retry
        chat, mid = f"webfault{i:06d}", str(uuid.uuid4())
        deadline = time.monotonic() + DB_OUTAGE + 60
        while time.monotonic() < deadline:  # the page's "Thử lại": the same message id
            try:
                r = web.post(srv.url + "/api/chat", json={"chat_id": chat, "message_id": mid, "text": "xin chào"})
            except httpx.HTTPError:
                time.sleep(0.5)
                continue
            if r.status_code == 200:
                with lock:
                    web_answers[chat] = len(r.json()["replies"])
                return
            with lock:
                web_told_retry += 1
            assert "Thử lại" in r.json()["error"] or r.status_code == 500
            time.sleep(0.5)

    def traffic() -> None:
        i = 0
        jobs: list[threading.Thread] = []
        while not stop.is_set():
            u = telegram_update(next(_ids), 10_000_000 + next(_ids), f"db xin chào {i}")
            e = zalo_event(uuid.uuid4().hex, f"8{next(_ids):012d}", f"db xin chào {i}")
            tg_asked.append(u)
            zl_asked.append(e)
            for job in (lambda u=u: platform.telegram(u, time.monotonic() + DB_OUTAGE + 60),
                        lambda e=e: platform.zalo(e, time.monotonic() + DB_OUTAGE + 60),
                        lambda i=i: ask_web(i)):
                t = threading.Thread(target=job)
                t.start()
                jobs.append(t)
            i += 1
            time.sleep(0.25)
        for t in jobs:
            t.join(DB_OUTAGE + 90)

    runner = threading.Thread(target=traffic)
    runner.start()
    time.sleep(1.0)
    cluster.stop()
    down_at = time.monotonic()
    time.sleep(DB_OUTAGE)
    cluster.start()
    up_at = time.monotonic()
    time.sleep(1.0)
    stop.set()
    runner.join(DB_OUTAGE + 120)
    chats = chats_of(tg_asked, zl_asked)
    wait_answered(env.fakes, chats, 60, k)
    platform.close()
    web.close()
    t = tally(env.fakes, chats, k)
    web_lost = len(tg_asked) - len(web_answers)
    logged = env.count(RequestLog)
    report(record_property, "database down", outage_seconds=round(up_at - down_at, 1), telegram_questions=len(tg_asked),
           telegram_non_2xx=platform.non_2xx, telegram_lost=t["telegram"]["lost"],
           telegram_duplicates=t["telegram"]["duplicates"], zalo_questions=len(zl_asked),
           zalo_lost=t["zalo"]["lost"], zalo_duplicates=t["zalo"]["duplicates"], web_questions=len(tg_asked),
           web_told_to_retry=web_told_retry, web_lost=web_lost, questions_logged=logged,
           inbox_open=env.count(InboxEvent, InboxEvent.state.in_(("pending", "processing"))))
    assert t["telegram"]["lost"] == 0 and t["zalo"]["lost"] == 0, srv.log_tail()
    assert web_lost == 0
    assert t["telegram"]["duplicates"] <= 1 and t["zalo"]["duplicates"] <= 1
