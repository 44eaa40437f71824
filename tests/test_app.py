"""The ASGI app (web chat API, health, outbox worker) on SQLite and PostgreSQL with the fake embedder."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, update

from bot.dialogue import Dialogue
from bot.messages import Button
from bot.storage import Storage
from bot.storage.models import Outbox, utcnow
from handlers.channels import Channel, configured_channels
from handlers.outbox import OutboxDeliverer
from handlers.server import create_app
from handlers.web import IpLimiter
from indexer.batching import BatchingEmbedder
from tests.fakes import FakeChannel, HashingEmbedder
from tests.support import DEPT, make_settings


def make_client(dialogue: Dialogue, channels: list[Any] | None = None, **serve: Any) -> TestClient:
    s = dialogue.settings
    settings = s.model_copy(update={"serve": s.serve.model_copy(
        update={"reload_seconds": 3600, "outbox_poll_seconds": 0.05, **serve})})
    app = create_app(settings, dialogue, channels=channels if channels is not None else [])
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def client(dialogue: Dialogue):
    with make_client(dialogue) as c:
        yield c


def chat(client: TestClient, chat_id: str, **body: Any) -> dict[str, Any]:
    r = client.post("/api/chat", json={"chat_id": chat_id, **body})
    assert r.status_code == 200, r.text
    replies = r.json()["replies"]
    assert len(replies) == 1
    return replies[0]


def test_ask_answer_details_and_feedback(client: TestClient, store: Storage) -> None:
    r = chat(client, "chat-answer-1", text="Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?")
    assert r["kind"] == "answer"
    payloads = [b["payload"] for b in r["buttons"]]
    assert payloads == ["detail:tctn-huong-muc", "fb:1", "fb:0"]
    assert all(b["label"] for b in r["buttons"])
    d = chat(client, "chat-answer-1", payload="detail:tctn-huong-muc")
    assert "Thành phần hồ sơ" in d["text"]
    fb = chat(client, "chat-answer-1", payload="fb:1")
    assert fb["kind"] == "info" and "Cảm ơn" in fb["text"]
    rows = store.db.transaction
    with rows() as s:
        from bot.storage.models import Feedback

        assert [(f.helpful, f.entry_id) for f in s.scalars(select(Feedback))] == [(True, "tctn-huong-muc")]


def test_choose_and_fallback(client: TestClient) -> None:
    r = chat(client, "chat-choose-1", payload="pick:ncc-muc-chuan-test")
    assert r["kind"] == "answer" and "2.789.000" in r["text"]
    r = chat(client, "chat-choose-1", payload="pick:khong-ton-tai")
    assert r["kind"] == "error"
    r = chat(client, "chat-choose-2", text="Hôm nay thời tiết Hà Nội thế nào?")
    assert r["kind"] == "fallback"
    assert {"label": "Gặp cán bộ", "payload": "followup:start"} in r["buttons"]


def test_dossier_lookup_prompt_and_media(client: TestClient) -> None:
    r = chat(client, "chat-dossier-1", text="tra cứu hồ sơ")
    assert r["kind"] == "dossier" and "số biên nhận" in r["text"].lower()
    r = chat(client, "chat-media-1", media="sticker")
    assert "chỉ đọc được tin nhắn chữ" in r["text"]
    r = chat(client, "chat-media-1", payload="media:image")
    assert "chỉ đọc được tin nhắn chữ" in r["text"]


def test_bad_requests_are_clear(client: TestClient) -> None:
    big = client.post("/api/chat", json={"chat_id": "chat-big-0001", "text": "a" * 10000})
    assert big.status_code == 413
    assert "quá dài" in big.json()["error"] and big.json()["replies"][0]["kind"] == "error"
    bad = client.post("/api/chat", content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and "JSON" in bad.json()["error"]
    for body in ([1, 2], {"text": "xin chào"}, {"chat_id": "x", "text": "hi"},
                 {"chat_id": "chat-bad-0001"}, {"chat_id": "chat-bad-0001", "text": 5},
                 {"chat_id": "chat-bad-0001", "payload": "p" * 100}):
        r = client.post("/api/chat", json=body)
        assert r.status_code == 400, body
        assert r.json()["error"].startswith("Yêu cầu không hợp lệ")
    notfound = client.get("/khong-co")
    assert notfound.status_code == 404 and "Traceback" not in notfound.text
    # a long question that fits the body limit gets the dialogue's own polite answer
    r = chat(client, "chat-long-0001", text="a" * 1500)
    assert "dài quá" in r["text"]


def test_internal_errors_never_show_a_stack_trace(dialogue: Dialogue, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(msg: Any) -> Any:
        raise RuntimeError("secret internal detail 0912345678")

    with make_client(dialogue) as c:
        monkeypatch.setattr(dialogue, "handle", boom)
        r = c.post("/api/chat", json={"chat_id": "chat-boom-0001", "text": "xin chào"})
    assert r.status_code == 500
    assert "sự cố" in r.json()["error"] and "secret" not in r.text and "Traceback" not in r.text


def test_per_ip_limit(dialogue: Dialogue) -> None:
    with make_client(dialogue, web_rate_per_minute=3) as c:
        codes = [c.post("/api/chat", json={"chat_id": f"chat-ip-{i:04d}", "text": "xin chào"}).status_code
                 for i in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    lim = IpLimiter(2, window=60)
    assert lim.allow("a", 0) and lim.allow("a", 1) and not lim.allow("a", 2) and lim.allow("b", 2)
    assert lim.allow("a", 61)


def test_page_and_static(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert f"<title>Trợ lý ảo – {DEPT}</title>" in page.text
    assert 'aria-live="polite"' in page.text and '<label for="q">' in page.text
    assert client.get("/static/chat.js").status_code == 200
    assert client.get("/static/chat.css").headers["content-type"].startswith("text/css")
    assert client.get("/static/../app.py").status_code == 404


def test_healthz_ok_and_db_down(client: TestClient, dialogue: Dialogue, tmp_path: Path) -> None:
    h = client.get("/healthz")
    assert h.status_code == 200
    body = h.json()
    assert body["status"] == "ok" and body["db"] is True
    assert body["index_version"] == dialogue.holder.version and body["index_version"]
    good = dialogue.store.db.engine
    dialogue.store.db.engine = create_engine(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'db.sqlite3'}")
    try:
        h = client.get("/healthz")
    finally:
        dialogue.store.db.engine = good
    assert h.status_code == 503 and h.json()["db"] is False and h.json()["status"] == "error"


def test_web_outbox_messages_are_fetched_then_acknowledged(client: TestClient, store: Storage) -> None:
    oid = store.outbox.enqueue("web", "chat-poll-0001", "Cán bộ trả lời: hồ sơ của bạn đã xong.",
                               [Button("Hữu ích", "fb:1")])
    store.outbox.enqueue("web", "chat-poll-0002", "cho người khác")
    expected = {"messages": [{"id": oid, "text": "Cán bộ trả lời: hồ sơ của bạn đã xong.", "kind": "officer",
                              "buttons": [{"label": "Hữu ích", "payload": "fb:1"}]}]}
    r = client.get("/api/chat/chat-poll-0001/messages")
    assert r.status_code == 200 and r.json() == expected
    assert client.get("/api/chat/chat-poll-0001/messages").json() == expected  # reading changes nothing
    assert client.post("/api/chat/chat-poll-0002/messages/ack", json={"ids": [oid]}).json() == {"acknowledged": 0}
    assert client.post("/api/chat/chat-poll-0001/messages/ack", json={"ids": [oid]}).json() == {"acknowledged": 1}
    assert client.get("/api/chat/chat-poll-0001/messages").json() == {"messages": []}
    assert [m.chat_id for m in store.outbox.due("web")] == ["chat-poll-0002"]
    assert client.get("/api/chat/bad id/messages").status_code in (400, 404)
    assert client.post("/api/chat/chat-poll-0001/messages/ack", json={"ids": "x"}).status_code == 400


def test_outbox_worker_delivers_and_retries(dialogue: Dialogue, store: Storage) -> None:
    fake = FakeChannel("fake", fail_times=1)
    assert isinstance(fake, Channel)
    oid = store.outbox.enqueue("fake", "42", "Xin chào từ cán bộ", [Button("Có", "fb:1")])
    store.outbox.enqueue("other", "43", "no channel with this name: stays pending")
    with make_client(dialogue, channels=[fake]) as c:
        assert fake.started
        assert c.post("/fake/webhook").json() == {"ok": True}  # the channel's router is mounted
        assert fake.failed_event.wait(10)  # the first attempt fails
        deliverer = c.app.state.deliverer  # type: ignore[attr-defined]
        deliverer.round_done.clear()
        assert deliverer.round_done.wait(10)  # the failure is recorded by the end of that round
        with store.db.transaction() as s:
            row = s.get(Outbox, oid)
            assert row is not None
            assert row.status == "pending" and row.attempts == 1 and "platform is down" in (row.last_error or "")
            assert row.next_attempt_at > utcnow() + timedelta(seconds=20)  # back-off
            s.execute(update(Outbox).where(Outbox.id == oid).values(next_attempt_at=utcnow()))
        assert fake.sent_event.wait(10)
        deliverer.round_done.clear()
        assert deliverer.round_done.wait(10)
    assert fake.stopped
    assert fake.sent == [("42", "Xin chào từ cán bộ", [Button("Có", "fb:1")])]
    with store.db.transaction() as s:
        row = s.get(Outbox, oid)
        assert row is not None and row.status == "sent" and row.attempts == 2
    assert [m.channel for m in store.outbox.due()] == ["other"]


def test_outbox_gives_up_after_max_attempts(store: Storage) -> None:
    fake = FakeChannel("fake", fail_times=10)
    oid = store.outbox.enqueue("fake", "7", "x")
    deliverer = OutboxDeliverer(store.outbox, {"fake": fake}, max_attempts=2)
    for _ in range(2):
        assert asyncio.run(deliverer.deliver_once()) == 0
        with store.db.transaction() as s:
            s.execute(update(Outbox).where(Outbox.id == oid, Outbox.status == "pending")
                      .values(next_attempt_at=utcnow()))
    with store.db.transaction() as s:
        row = s.get(Outbox, oid)
        assert row is not None and row.status == "failed" and row.attempts == 2
    assert asyncio.run(deliverer.deliver_once()) == 0 and fake.failures == 2


def test_a_claimed_message_is_not_sent_twice(store: Storage) -> None:
    fake = FakeChannel("fake")
    store.outbox.enqueue("fake", "7", "một lần thôi")
    one = OutboxDeliverer(store.outbox, {"fake": fake})
    two = OutboxDeliverer(Storage(store.engine).outbox, {"fake": fake})  # a second server process

    async def both() -> list[int]:
        return list(await asyncio.gather(one.deliver_once(), two.deliver_once()))

    assert sorted(asyncio.run(both())) == [0, 1]
    assert [t for _c, t, _b in fake.sent] == ["một lần thôi"]


def test_configured_channels_without_tokens(dialogue: Dialogue) -> None:
    assert configured_channels(dialogue.settings, dialogue, dialogue.store) == []


def test_configured_channels_with_tokens(dialogue: Dialogue, tmp_path: Path) -> None:
    s = make_settings(tmp_path, dialogue.settings.knowledge_dir, telegram={"token": "123:abc"},
                      zalo={"app_id": "1", "oa_secret_key": "k", "app_secret_key": "s"})
    chans = configured_channels(s, dialogue, dialogue.store)
    assert [c.name for c in chans] == ["telegram", "zalo"] and all(isinstance(c, Channel) for c in chans)


def test_cli_serve_refuses_without_schema_or_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from bot.storage.engine import upgrade
    from handlers.cli import app

    monkeypatch.setenv("LDTBXH_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("LDTBXH_DATABASE_URL", raising=False)
    runner = CliRunner()
    r = runner.invoke(app, ["serve", "--port", "8999"])
    assert r.exit_code == 3 and "ldtbxh db upgrade" in r.output
    upgrade(f"sqlite:///{tmp_path / 'var' / 'ldtbxh.sqlite3'}")
    r = runner.invoke(app, ["serve", "--port", "8999"])
    assert r.exit_code == 3 and "ldtbxh index build" in r.output


class SlowEmbedder:
    """Counts calls; each forward pass takes a while, like a real model."""

    def __init__(self) -> None:
        self.inner = HashingEmbedder(64)
        self.name, self.dim = self.inner.name, self.inner.dim
        self.calls: list[int] = []
        self.fail = False

    def warm_up(self) -> None:
        return None

    def embed(self, texts: list[str], prefix: str) -> Any:
        self.calls.append(len(texts))
        time.sleep(0.05)
        if self.fail:
            raise RuntimeError("model crashed")
        return self.inner.embed(texts, prefix)


def test_batching_embedder_batches_caches_and_propagates_errors() -> None:
    slow = SlowEmbedder()
    emb = BatchingEmbedder(slow, max_batch=8, cache_size=100)
    texts = [f"câu hỏi số {i}" for i in range(12)]
    results: dict[str, Any] = {}

    def ask(t: str) -> None:
        results[t] = emb.embed([t], "query: ")

    threads = [threading.Thread(target=ask, args=(t,)) for t in texts]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sum(slow.calls) == 12 and len(slow.calls) < 12 and max(slow.calls) <= 8  # batched
    for t in texts:
        assert np.allclose(results[t], slow.inner.embed([t], "query: "))
        assert results[t].shape == (1, 64)
    n = len(slow.calls)
    again = emb.embed([texts[0]], "query: ")  # remembered: no model call
    assert len(slow.calls) == n and emb.hits == 1 and np.allclose(again, results[texts[0]])
    builds = len(slow.calls)
    assert emb.embed([f"đoạn {i}" for i in range(5)], "passage: ").shape == (5, 64)  # builds go straight
    assert slow.calls[builds:] == [5]
    slow.fail = True
    with pytest.raises(RuntimeError, match="model crashed"):
        emb.embed(["chưa gặp"], "query: ")
    slow.fail = False
    assert emb.embed(["chưa gặp"], "query: ").shape == (1, 64)  # the failure is not cached


def test_batching_embedder_batches_two_view_questions_together() -> None:
    """A long message is embedded as two texts (its body and its asking sentences): concurrent messages
    still share forward passes, each gets its own vectors in its own order, and a batch never exceeds
    ``max_batch``."""
    slow = SlowEmbedder()
    emb = BatchingEmbedder(slow, max_batch=8, cache_size=0)
    pairs = [(f"chuyện dài số {i} của tôi", f"câu hỏi {i}") for i in range(10)]
    results: dict[int, Any] = {}

    def ask(i: int) -> None:
        results[i] = emb.embed(list(pairs[i]), "query: ")

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(10)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sum(slow.calls) == 20 and len(slow.calls) < 10 and max(slow.calls) <= 8
    for i, pair in enumerate(pairs):
        assert results[i].shape == (2, 64)
        assert np.allclose(results[i], slow.inner.embed(list(pair), "query: "))


def test_ldtbxh_serve_in_a_subprocess_with_the_fake_embedder(tmp_path: Path, mini_kb: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """``ldtbxh serve`` as its own process: it gets the tests' fake embedder from the test-only setting
    ``LDTBXH_TEST_EMBEDDER`` (an import path), serves the web chat and reports its index on /healthz."""
    import os
    import queue
    import socket
    import subprocess
    import sys

    import httpx
    from typer.testing import CliRunner

    from handlers.cli import app as cli
    from tests.support import REPO, TEST_EMBEDDER

    env = {"LDTBXH_KNOWLEDGE_DIR": str(mini_kb), "LDTBXH_DATA_DIR": str(tmp_path / "var"),
           "LDTBXH_TEST_EMBEDDER": TEST_EMBEDDER, "LDTBXH_MIN_DENSE_FOR_ANSWER": "0", "LDTBXH_DENSE_WEIGHT": "0.3",
           "LDTBXH_ANSWER_THRESHOLD": "0.5", "LDTBXH_CHOICE_THRESHOLD": "0.3"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert CliRunner().invoke(cli, ["db", "upgrade"]).exit_code == 0
    assert CliRunner().invoke(cli, ["index", "build"]).exit_code == 0
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("LDTBXH_")}
    child_env.update(env, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "handlers.cli", "serve", "--port", str(port)], env=child_env,
                            cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr or []], daemon=True).start()
    try:
        seen = []
        # uvicorn logs "Application startup complete" before it binds the socket; "Uvicorn running on" after
        while not any("Uvicorn running on" in line for line in seen):
            seen.append(lines.get(timeout=120))
        base = f"http://127.0.0.1:{port}"
        health = httpx.get(base + "/healthz").json()
        assert health["status"] == "ok" and health["index_version"]
        r = httpx.post(base + "/api/chat", json={"chat_id": "sub-process-1",
                                                 "text": "Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?"})
        assert r.json()["replies"][0]["kind"] == "answer"
    finally:
        proc.terminate()
        proc.wait(30)
