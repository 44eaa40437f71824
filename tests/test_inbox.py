"""The durable inbox and the outbox's ordering and back-off, on SQLite and PostgreSQL; the web chat's
idempotent messages; hostile text at the edges."""

from __future__ import annotations

import json
import logging
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from bot.dialogue import Dialogue
from bot.messages import Button, clean_json, clean_text
from bot.storage import Storage
from bot.storage.inbox import QueuedReply
from bot.storage.models import InboxEvent, Outbox, RequestLog, utcnow
from bot.storage.outbox import Backoff
from handlers.server import create_app
from handlers.spool import Spool


def test_record_is_unique_per_channel(store: Storage) -> None:
    first = store.inbox.record("telegram", "101", "5", {"update_id": 101})
    assert first is not None
    assert store.inbox.record("telegram", "101", "5", {"update_id": 101}) is None  # a retry or replay
    assert store.inbox.record("zalo", "101", "5", {}) is not None  # another channel's id space
    assert store.inbox.counts() == {"pending": 2}


def test_claim_one_per_chat_in_order_and_resume_after_a_crash(store: Storage) -> None:
    for i, chat in enumerate(["a", "a", "b", "a", "c"]):
        store.inbox.record("telegram", str(i), chat, {"n": i})
    got = store.inbox.claim(["telegram"], limit=10, hold=timedelta(seconds=60))
    assert [(i.chat_id, i.payload["n"]) for i in got] == [("a", 0), ("b", 2), ("c", 4)]
    assert store.inbox.claim(["telegram"]) == []  # a's next events wait for its first
    a0 = got[0]
    assert store.inbox.complete(a0.id, a0.claim_token, [QueuedReply("trả lời 0", [Button("OK", "help")])],
                                reply_to="câu hỏi 0", outbox_channel="telegram", chat_id="a")
    assert [(i.chat_id, i.payload["n"]) for i in store.inbox.claim(["telegram"], hold=timedelta(seconds=60))] \
        == [("a", 1)]
    # b's worker "dies": its claim lapses and another worker takes the event again, once
    with store.db.transaction() as s:
        s.execute(update(InboxEvent).where(InboxEvent.id == got[1].id)
                  .values(claimed_until=utcnow() - timedelta(seconds=1)))
    again = store.inbox.claim(["telegram"])
    assert [i.id for i in again] == [got[1].id] and again[0].attempts == 2
    # the dead worker's late completion is refused: nothing queued twice
    assert not store.inbox.complete(got[1].id, got[1].claim_token, [QueuedReply("x")], outbox_channel="telegram",
                                    chat_id="b")
    assert store.inbox.complete(again[0].id, again[0].claim_token, [QueuedReply("y")], outbox_channel="telegram",
                                chat_id="b")
    with store.db.transaction() as s:
        rows = s.scalars(select(Outbox).order_by(Outbox.id)).all()
        assert [(r.chat_id, r.text, r.reply_to) for r in rows] == [("a", "trả lời 0", "câu hỏi 0"), ("b", "y", None)]
        done = s.get(InboxEvent, a0.id)
        assert done is not None and done.state == "done" and done.payload is None  # the text is not kept


def test_two_processes_claim_disjoint_events(migrated_url: str) -> None:
    stores = [Storage(migrated_url), Storage(migrated_url)]
    try:
        for i in range(200):
            stores[0].inbox.record("zalo", f"e{i}", f"chat{i % 50}", {"n": i})
        claimed: list[list[int]] = [[], []]

        def work(k: int) -> None:
            while True:
                items = stores[k].inbox.claim(["zalo"], limit=7, hold=timedelta(seconds=60))
                if not items:
                    if stores[k].inbox.open_count(["zalo"]) == 0:
                        return
                    continue
                for it in items:
                    claimed[k].append(it.payload["n"])
                    assert stores[k].inbox.complete(it.id, it.claim_token)

        threads = [threading.Thread(target=work, args=(k,)) for k in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        both = claimed[0] + claimed[1]
        assert sorted(both) == list(range(200))  # every event once, none twice
        assert claimed[0] and claimed[1]
        for k in (0, 1):  # per chat, in order
            for chat in range(50):
                mine = [n for n in claimed[k] if n % 50 == chat]
                assert mine == sorted(mine)
    finally:
        for s in stores:
            s.close()


def test_outbox_keeps_a_chats_order_and_backs_off(store: Storage) -> None:
    first = store.outbox.enqueue("telegram", "9", "một")
    store.outbox.enqueue("telegram", "9", "hai")
    store.outbox.enqueue("telegram", "8", "khác")
    assert [m.text for m in store.outbox.due("telegram")] == ["một", "khác"]
    backoff = Backoff(base=10, cap=40, max_attempts=100, give_up_after=timedelta(hours=5))
    assert [backoff.delay(n) for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 40, 40]
    assert store.outbox.mark_failed(first, "HTTP 500", backoff=backoff, retry_after=120) == "pending"
    with store.db.transaction() as s:
        row = s.get(Outbox, first)
        assert row is not None and row.next_attempt_at > utcnow() + timedelta(seconds=110)  # retry_after wins
    assert [m.text for m in store.outbox.due("telegram")] == ["khác"]  # "hai" waits behind "một"
    assert store.outbox.hasten("zalo") == 0 and store.outbox.hasten("telegram") == 1  # Telegram works again
    assert [m.text for m in store.outbox.due("telegram")] == ["một", "khác"]
    assert store.outbox.mark_failed(first, "Forbidden: bot was blocked", permanent=True) == "failed"
    assert [m.text for m in store.outbox.due("telegram")] == ["hai", "khác"]
    assert store.outbox.retry(first) and store.outbox.counts()["pending"] == 3


def test_clean_text() -> None:
    assert clean_text("a\x00b\ud800c\u0007d\ufffe\r\ne\tf") == "abcd\ne\tf"
    assert clean_text("Tie\u0302\u0301n") == "Tiến"  # NFC
    assert clean_json({"message": {"text": "x\x00\udfff"}, "n": [1, "\x00"]}) == {"message": {"text": "x"},
                                                                                    "n": [1, ""]}


def test_spool_replays_in_order_and_keeps_what_fails(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool" / "zalo.jsonl")
    for i in range(5):
        spool.append({"n": i})
    seen: list[int] = []

    def handle(rec: dict[str, Any]) -> None:
        if rec["n"] == 3 and not seen.count(-1):
            seen.append(-1)
            raise ConnectionError("database still down")
        seen.append(rec["n"])

    assert spool.replay(handle) == 3 and spool.pending()
    assert spool.replay(handle) == 2 and not spool.pending()
    assert [n for n in seen if n >= 0] == [0, 1, 2, 3, 4]


# --- the web chat ------------------------------------------------------------------------------------


def _client(dialogue: Dialogue) -> TestClient:
    settings = dialogue.settings.model_copy(update={"serve": dialogue.settings.serve.model_copy(
        update={"reload_seconds": 3600, "inbox_poll_seconds": 0.05})})
    return TestClient(create_app(settings, dialogue, channels=[]))


def test_web_retry_with_the_same_message_id_is_answered_once(dialogue: Dialogue, store: Storage) -> None:
    calls: list[str] = []
    real = dialogue.handle

    def counted(msg: Any) -> Any:
        calls.append(msg.text)
        return real(msg)

    dialogue.handle = counted  # type: ignore[method-assign]
    body = {"chat_id": "chat-idem-0001", "message_id": "0b7e9c1e-6f0e-4a53-9d55-1c1c0c0c0c0c",
            "text": "Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?"}
    with _client(dialogue) as c:
        first = c.post("/api/chat", json=body)
        again = c.post("/api/chat", json=body)
        other = c.post("/api/chat", json={**body, "message_id": "1b7e9c1e-6f0e-4a53-9d55-1c1c0c0c0c0c"})
    assert first.status_code == again.status_code == other.status_code == 200
    assert again.json()["replies"] == first.json()["replies"] and again.json()["repeated"] is True
    assert len(calls) == 2  # the retry was not answered a second time
    with store.db.transaction() as s:
        assert len(s.scalars(select(RequestLog)).all()) == 2


def test_hostile_text_is_cleaned_and_logged_without_parameters(dialogue: Dialogue, store: Storage,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    raw = '{"chat_id": "chat-nul-00001", "message_id": "2b7e9c1e-6f0e", "text": "tr\\u1ee3 c\\u1ea5p\\u0000 th\\u1ea5t nghi\\u1ec7p \\ud800 0912345678"}'
    with _client(dialogue) as c:
        r = c.post("/api/chat", content=raw.encode(), headers={"Content-Type": "application/json"})
    assert r.status_code == 200 and r.json()["replies"]
    with store.db.transaction() as s:
        [row] = s.scalars(select(RequestLog)).all()
    assert "\x00" not in row.question and "\ud800" not in row.question and "thất nghiệp" in row.question
    assert store.engine.hide_parameters
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "thất nghiệp" not in logged and "0912345678" not in logged


def test_web_database_down_says_retry(dialogue: Dialogue, store: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    def down(*a: Any, **k: Any) -> Any:
        raise ConnectionError("database down")

    with _client(dialogue) as c:
        monkeypatch.setattr(store.inbox, "record", down)
        r = c.post("/api/chat", json={"chat_id": "chat-down-0001", "message_id": "3b7e9c1e-6f0e",
                                      "text": "xin chào"})
    assert r.status_code == 503 and "Thử lại" in r.json()["error"]


def test_json_body_of_the_inbox_is_plain(store: Storage) -> None:
    rec = store.inbox.record("web", "c:1", "c", {"text": "xin chào"})
    assert rec is not None
    with store.db.transaction() as s:
        row = s.get(InboxEvent, rec.id)
        assert row is not None and json.dumps(row.payload) == '{"text": "xin ch\\u00e0o"}'


def test_web_limits_per_chat_and_a_coarse_ceiling_per_address(dialogue: Dialogue, store: Storage) -> None:
    settings = dialogue.settings.model_copy(update={"serve": dialogue.settings.serve.model_copy(
        update={"reload_seconds": 3600, "web_chat_rate_per_minute": 2, "web_rate_per_minute": 5})})
    with TestClient(create_app(settings, dialogue, channels=[])) as c:
        def ask(chat: str) -> int:
            return c.post("/api/chat", json={"chat_id": chat, "text": "xin chào"}).status_code

        # one chat is limited on its own; the others behind the same address still get through
        assert [ask("chat-lim-0001") for _ in range(3)] == [200, 200, 429]
        assert [ask(f"chat-lim-{i:04d}") for i in range(2, 6)] == [200, 200, 200, 429]  # the address ceiling
    # the counts are in the database: another process sees them
    from bot.storage.limits import Limit
    assert store.limits.check([Limit("web:chat:chat-lim-0001", 2, timedelta(minutes=1))], record=False) is not None


def test_web_database_error_while_answering_is_answered_later_once(dialogue: Dialogue, store: Storage) -> None:
    from sqlalchemy.exc import OperationalError

    real = dialogue.handle
    failures = [1]

    def flaky(msg: Any) -> Any:
        if failures:
            failures.pop()
            raise OperationalError("SELECT 1", {}, ConnectionError("database down"))
        return real(msg)

    dialogue.handle = flaky  # type: ignore[method-assign]
    body = {"chat_id": "chat-dberr-0001", "message_id": "4b7e9c1e-6f0e-4a53-9d55-1c1c0c0c0c0c",
            "text": "Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?"}
    with _client(dialogue) as c:
        first = c.post("/api/chat", json=body)
        assert first.status_code == 503 and "Thử lại" in first.json()["error"]
        again = c.post("/api/chat", json=body)  # the page's retry: the worker has answered it meanwhile
    assert again.status_code == 200 and "60%" in again.json()["replies"][0]["text"]
    with store.db.transaction() as s:
        assert len(s.scalars(select(RequestLog)).all()) == 1
