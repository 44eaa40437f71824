"""The web chat's conversation kept on the server: restore, retry answered once, retention, rate limit."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select, update

from bot.dialogue import Dialogue
from bot.messages import Button
from bot.storage import Storage
from bot.storage.models import ChatTranscript, RequestLog, utcnow
from tests.test_app import make_client

LONG_ID = "w" + "0123456789abcdef" * 2  # 128 bits, as the page makes them


def test_history_restores_questions_answers_and_officers_messages(dialogue: Dialogue, store: Storage) -> None:
    with make_client(dialogue) as c:
        r = c.post("/api/chat", json={"chat_id": LONG_ID, "text": "Trợ cấp thất nghiệp được hưởng bao nhiêu tiền "
                                      "một tháng?"})
        assert r.status_code == 200
        c.post("/api/chat", json={"chat_id": LONG_ID, "payload": "fb:1", "label": "👍 Hữu ích"})
        oid = store.outbox.enqueue("web", LONG_ID, "Cán bộ: đã nhận hồ sơ.", [Button("Gặp cán bộ", "followup:start")])
        assert c.post(f"/api/chat/{LONG_ID}/messages/ack", json={"ids": [oid]}).json() == {"acknowledged": 1}
        h = c.get(f"/api/chat/{LONG_ID}/history")
        assert h.status_code == 200 and h.headers["cache-control"] == "no-store"
        msgs = h.json()["messages"]
    assert [m["role"] for m in msgs] == ["user", "bot", "user", "bot", "officer"]
    assert msgs[1]["kind"] == "answer" and msgs[1]["buttons"][0]["payload"] == "detail:tctn-huong-muc"
    assert msgs[2] == {"role": "user", "text": "👍 Hữu ích", "kind": None, "buttons": [], "payload": "fb:1"}
    assert msgs[4]["text"] == "Cán bộ: đã nhận hồ sơ." and msgs[4]["buttons"][0]["label"] == "Gặp cán bộ"


def test_a_retried_message_is_answered_once(dialogue: Dialogue, store: Storage) -> None:
    body = {"chat_id": LONG_ID, "text": "mức chuẩn trợ cấp người có công là bao nhiêu", "client_id": str(uuid.uuid4())}
    with make_client(dialogue) as c:
        first = c.post("/api/chat", json=body).json()
        again = c.post("/api/chat", json=body).json()
        bad = c.post("/api/chat", json={**body, "client_id": "not-a-uuid"})
    assert first["replies"] == again["replies"] and first["replies"][0]["kind"] == "answer"
    assert again.get("repeated") is True  # the stored answer, not a second one
    assert bad.status_code == 400
    with store.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(RequestLog)) == 1


def test_short_chat_ids_are_not_kept_and_old_lines_are_deleted(dialogue: Dialogue, store: Storage) -> None:
    with make_client(dialogue) as c:
        c.post("/api/chat", json={"chat_id": "short-id-1", "text": "xin chào"})
        assert c.get("/api/chat/short-id-1/history").json() == {"messages": []}
        c.post("/api/chat", json={"chat_id": LONG_ID, "text": "xin chào"})
    with store.db.transaction() as s:
        assert s.scalars(select(ChatTranscript.chat_id).distinct()).all() == [LONG_ID]
        s.execute(update(ChatTranscript).values(created_at=utcnow() - timedelta(days=31)))
    assert store.transcripts.history("web", LONG_ID, since=utcnow() - timedelta(days=30)) == []
    assert store.transcripts.purge(utcnow() - timedelta(days=30)) == 2
    with make_client(dialogue, web_history_days=0) as c:  # retention 0: nothing kept
        c.post("/api/chat", json={"chat_id": LONG_ID, "text": "xin chào"})
    assert store.transcripts.history("web", LONG_ID) == []


def test_restore_is_rate_limited_per_address(dialogue: Dialogue) -> None:
    with make_client(dialogue, web_restore_per_minute=3) as c:
        codes = [c.get(f"/api/chat/{LONG_ID}/history").status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    with make_client(dialogue) as c:
        assert c.get("/api/chat/bad id!/history").status_code in (400, 404)




def test_phone_numbers_are_masked_in_the_kept_conversation(dialogue: Dialogue, store: Storage) -> None:
    with make_client(dialogue) as c:
        c.post("/api/chat", json={"chat_id": LONG_ID, "payload": "followup:start", "label": "Gặp cán bộ"})
        c.post("/api/chat", json={"chat_id": LONG_ID, "text": "Nguyễn Văn An"})
        c.post("/api/chat", json={"chat_id": LONG_ID, "text": "0912345678"})
        msgs = c.get(f"/api/chat/{LONG_ID}/history").json()["messages"]
    texts = " ".join(m["text"] for m in msgs)
    assert "0912345678" not in texts and "0912 345 678" not in texts and "09******78" in texts
