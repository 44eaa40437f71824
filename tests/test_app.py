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
from fastapi import APIRouter
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, update

from bot.config import load_settings
from bot.dialogue import Dialogue
from bot.messages import Button
from bot.models import Outbox, utcnow
from bot.runtime import AssistantHolder
from bot.store import Store
from handlers.app import (
    BatchingEmbedder,
    Channel,
    ServeOptions,
    configured_channels,
    create_app,
    deliver_outbox_once,
)
from handlers.web import IpLimiter
from indexer.embed import HashingEmbedder
from indexer.index import build_index

try:
    from tests.db_fixtures import db_url, migrated_url, store  # noqa: F401
except ImportError:  # pragma: no cover
    from db_fixtures import db_url, migrated_url, store  # type: ignore[no-redef]  # noqa: F401

DEPT = "Sở Lao động – Thương binh và Xã hội tỉnh Thử Nghiệm"


@pytest.fixture
def dialogue(store: Store, migrated_url: str, tmp_path: Path, mini_kb: Path) -> Dialogue:
    settings = load_settings(
        knowledge_dir=mini_kb, data_dir=tmp_path / "var", embedding_model="fake-hashing-256",
        database_url=migrated_url, min_dense_for_answer=0.0, dense_weight=0.3, answer_threshold=0.5,
        choice_threshold=0.3, dept_name=DEPT,
    )
    build_index(settings.knowledge_dir, settings.index_root, HashingEmbedder(256))
    holder = AssistantHolder(settings, embedder=HashingEmbedder(256), active_version=store.active_kb_version)
    return Dialogue.from_settings(settings, store=store, holder=holder)


class FakeChannel:
    """A channel adapter as handlers.app expects one: records what it sends, fails when told to."""

    def __init__(self, name: str = "fake", fail_times: int = 0) -> None:
        self.name = name
        self.router: APIRouter | None = APIRouter()
        self.sent: list[tuple[str, str, list[Button]]] = []
        self.fail_times = fail_times
        self.started = self.stopped = False

        @self.router.post(f"/{name}/webhook")
        async def webhook() -> dict[str, bool]:
            return {"ok": True}

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, chat_id: str, text: str, buttons: list[Button]) -> None:
        if self.fail_times > 0:
            self.fail_times -= 1
            raise ConnectionError("the platform is down")
        self.sent.append((chat_id, text, buttons))


def make_client(dialogue: Dialogue, channels: list[Any] | None = None, **opts: Any) -> TestClient:
    options = ServeOptions(**{"reload_seconds": 3600, "outbox_poll_seconds": 0.05, **opts})
    app = create_app(dialogue.settings, dialogue, channels=channels if channels is not None else [],
                     options=options)
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


def test_ask_answer_details_and_feedback(client: TestClient, store: Store) -> None:
    r = chat(client, "chat-answer-1", text="Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?")
    assert r["kind"] == "answer"
    payloads = [b["payload"] for b in r["buttons"]]
    assert payloads == ["detail:tctn-huong-muc", "fb:1", "fb:0"]
    assert all(b["label"] for b in r["buttons"])
    d = chat(client, "chat-answer-1", payload="detail:tctn-huong-muc")
    assert "Thành phần hồ sơ" in d["text"]
    fb = chat(client, "chat-answer-1", payload="fb:1")
    assert fb["kind"] == "info" and "Cảm ơn" in fb["text"]
    rows = store.session
    with rows() as s:
        from bot.models import Feedback

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
    good = dialogue.store.engine
    dialogue.store.engine = create_engine(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'db.sqlite3'}")
    try:
        h = client.get("/healthz")
    finally:
        dialogue.store.engine = good
    assert h.status_code == 503 and h.json()["db"] is False and h.json()["status"] == "error"


def test_web_outbox_messages_are_polled_once(client: TestClient, store: Store) -> None:
    store.enqueue_outbox("web", "chat-poll-0001", "Cán bộ trả lời: hồ sơ của bạn đã xong.",
                         [Button("Hữu ích", "fb:1")])
    store.enqueue_outbox("web", "chat-poll-0002", "cho người khác")
    r = client.get("/api/chat/chat-poll-0001/messages")
    assert r.status_code == 200
    assert r.json() == {"messages": [{"text": "Cán bộ trả lời: hồ sơ của bạn đã xong.", "kind": "officer",
                                      "buttons": [{"label": "Hữu ích", "payload": "fb:1"}]}]}
    assert client.get("/api/chat/chat-poll-0001/messages").json() == {"messages": []}
    assert [m.chat_id for m in store.due_outbox("web")] == ["chat-poll-0002"]
    assert client.get("/api/chat/bad id/messages").status_code in (400, 404)


def test_outbox_worker_delivers_and_retries(dialogue: Dialogue, store: Store) -> None:
    fake = FakeChannel("fake", fail_times=1)
    assert isinstance(fake, Channel)
    oid = store.enqueue_outbox("fake", "42", "Xin chào từ cán bộ", [Button("Có", "fb:1")])
    store.enqueue_outbox("other", "43", "no channel with this name: stays pending")
    with make_client(dialogue, channels=[fake]) as c:
        assert fake.started
        assert c.post("/fake/webhook").json() == {"ok": True}  # the channel's router is mounted
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # the first attempt fails
            with store.session() as s:
                row = s.get(Outbox, oid)
                assert row is not None
                if row.attempts == 1:
                    break
            time.sleep(0.02)
        with store.session() as s:
            row = s.get(Outbox, oid)
            assert row is not None
            assert row.status == "pending" and row.attempts == 1 and "platform is down" in (row.last_error or "")
            assert row.next_attempt_at > utcnow() + timedelta(seconds=20)  # back-off
            s.execute(update(Outbox).where(Outbox.id == oid).values(next_attempt_at=utcnow()))
        deadline = time.monotonic() + 5
        while not fake.sent and time.monotonic() < deadline:
            time.sleep(0.02)
    assert fake.stopped
    assert fake.sent == [("42", "Xin chào từ cán bộ", [Button("Có", "fb:1")])]
    with store.session() as s:
        row = s.get(Outbox, oid)
        assert row is not None and row.status == "sent" and row.attempts == 2
    assert [m.channel for m in store.due_outbox()] == ["other"]


def test_outbox_gives_up_after_max_attempts(store: Store) -> None:
    fake = FakeChannel("fake", fail_times=10)
    oid = store.enqueue_outbox("fake", "7", "x")
    for _ in range(2):
        asyncio.run(deliver_outbox_once(store, {"fake": fake}, max_attempts=2))
        with store.session() as s:
            s.execute(update(Outbox).where(Outbox.id == oid, Outbox.status == "pending")
                      .values(next_attempt_at=utcnow()))
    with store.session() as s:
        row = s.get(Outbox, oid)
        assert row is not None and row.status == "failed" and row.attempts == 2
    assert asyncio.run(deliver_outbox_once(store, {"fake": fake})) == 0


def test_configured_channels_without_channel_modules_or_tokens(dialogue: Dialogue) -> None:
    chans = configured_channels(dialogue.settings, dialogue, dialogue.store)
    assert all(isinstance(c, Channel) for c in chans)  # none without tokens, whatever is installed
    assert chans == []


def test_cli_serve_refuses_without_schema_or_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from bot.db import upgrade
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
    assert emb.embed(["a", "b"], "passage: ").shape == (2, 64)  # builds go straight through
    slow.fail = True
    with pytest.raises(RuntimeError, match="model crashed"):
        emb.embed(["chưa gặp"], "query: ")
    slow.fail = False
    assert emb.embed(["chưa gặp"], "query: ").shape == (1, 64)  # the failure is not cached
