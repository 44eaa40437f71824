"""Storage: migrations from empty, the schema check, and the Storage API (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select, text, update

from bot.messages import Button
from bot.storage import AlreadyExists, Storage
from bot.storage import engine as engine_module
from bot.storage.engine import (
    SchemaBehindError,
    check_schema_current,
    current_revision,
    downgrade,
    head_revision,
    make_engine,
)
from bot.storage.engine import upgrade as db_upgrade
from bot.storage.models import Base, ChatIdentity, ConversationState, Outbox, RequestLog, utcnow

EXPECTED_TABLES = {
    "chat_identities",
    "requests",
    "unanswered",
    "followups",
    "feedback",
    "dossiers",
    "dossier_history",
    "dossier_imports",
    "dossier_lookups",
    "audit_log",
    "conversation_state",
    "outbox",
    "users",
    "kb_drafts",
    "console_sessions",
    "channel_tokens",
}


def test_migrations_from_empty_create_every_table_and_match_models(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) is None
        with pytest.raises(SchemaBehindError, match="run: ldtbxh db upgrade"):
            check_schema_current(engine)

        assert db_upgrade(engine) == head_revision()
        check_schema_current(engine)
        tables = set(inspect(engine).get_table_names())
        assert tables >= EXPECTED_TABLES
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == [], f"models and migrations differ: {diff}"

        # Upgrading again is a no-op; downgrading to empty and back works.
        assert db_upgrade(engine) == head_revision()
        downgrade(engine, "base")
        assert not (EXPECTED_TABLES & set(inspect(engine).get_table_names()))
        db_upgrade(engine)
        check_schema_current(engine)
    finally:
        engine.dispose()


def test_store_refuses_a_schema_that_is_behind(db_url: str) -> None:
    with pytest.raises(SchemaBehindError) as err:
        Storage(db_url)
    assert "run: ldtbxh db upgrade" in str(err.value)
    engine = make_engine(db_url)
    try:
        db_upgrade(engine)
        with engine.begin() as conn:  # pretend the database is at an older revision
            conn.execute(text("UPDATE alembic_version SET version_num = '0000'"))
        with pytest.raises(SchemaBehindError):
            check_schema_current(engine)
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head_revision()})
        Storage(engine)  # current again: accepted
    finally:
        engine.dispose()


def test_upgrade_accepts_settings(tmp_path: Path) -> None:
    from bot.config import Settings

    settings = Settings(database_url=None, data_dir=tmp_path / "data")
    assert settings.db_url.startswith("sqlite:///")
    assert db_upgrade(settings) == head_revision()
    assert (tmp_path / "data" / "ldtbxh.sqlite3").is_file()
    s = Storage(settings)
    s.close()


def test_identity_is_created_once_per_channel_and_chat(store: Storage) -> None:
    a = store.identities.get_or_create("telegram", "1001")
    assert store.identities.get_or_create("telegram", "1001") == a
    assert store.identities.get_or_create("zalo", "1001") != a
    assert store.identities.get_or_create("telegram", "1002") != a


def test_identity_is_one_row_when_a_new_chat_races_with_itself(store: Storage) -> None:
    """Two messages of a new chat stored at once get the same identity, and no statement fails (so the
    bookkeeping can run inside a unit)."""
    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(lambda _: store.identities.get_or_create("zalo", "racing-chat"), range(16)))
    assert len(ids) == 1
    with store.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(ChatIdentity).where(
            ChatIdentity.external_id == "racing-chat")) == 1


def test_a_unit_commits_its_calls_together_or_not_at_all(store: Storage) -> None:
    with store.db.unit():
        rid = store.requests.log("web", "unit-1", "câu hỏi một", kind="fallback")
        store.requests.log_unanswered("web", "unit-1", "câu hỏi một", request_id=rid)
        store.states.set("web", "unit-1", {"last_request_id": rid})
        with store.db.unit():  # a unit inside a unit is the same unit
            store.states.set("web", "unit-1", {"last_request_id": rid, "n": 2})
    assert store.states.get("web", "unit-1") == {"last_request_id": rid, "n": 2}
    assert [u.request_id for u in store.requests.list_unanswered()] == [rid]

    with pytest.raises(RuntimeError), store.db.unit():
        store.requests.log("web", "unit-2", "câu hỏi hai", kind="fallback")
        store.states.set("web", "unit-2", {"x": 1})
        raise RuntimeError("the answer failed")
    assert store.states.get("web", "unit-2") is None
    with store.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(RequestLog).where(RequestLog.question == "câu hỏi hai")) == 0


def test_the_inbox_records_an_event_once(store: Storage) -> None:
    first = store.inbox.record("web", "chat:m1", "chat", {"text": "a"}, claim_for=timedelta(seconds=30))
    assert first is not None and first.claim_token
    assert store.inbox.record("web", "chat:m1", "chat", {"text": "a"}) is None
    assert store.inbox.record("telegram", "chat:m1", "chat", {"text": "a"}) is not None


@pytest.mark.postgres
def test_a_pooled_connection_killed_while_idle_is_replaced_unseen(pg_database: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """No ping on every checkout; a connection idle for longer than the threshold is checked first."""
    engine = make_engine(pg_database, pool_size=1, max_overflow=0)
    admin = make_engine(pg_database, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as c:
            before = c.execute(text("SELECT pg_backend_pid()")).scalar()
        with engine.connect() as c:  # used a moment ago: no ping, the same connection
            assert c.execute(text("SELECT pg_backend_pid()")).scalar() == before
        with admin.connect() as c:
            assert c.execute(text("SELECT pg_terminate_backend(:p)"), {"p": before}).scalar()
        monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 0.0)
        time.sleep(0.05)
        with engine.connect() as c:  # idle: pinged, found dead, replaced
            after = c.execute(text("SELECT pg_backend_pid()")).scalar()
        assert after != before
    finally:
        engine.dispose()
        admin.dispose()


def test_requests_unanswered_and_feedback(store: Storage) -> None:
    rid = store.requests.log(
        "web",
        "s1",
        "Tôi gọi 0912 345 678 hỏi trợ cấp thất nghiệp",
        normalized="toi goi 0912 345 678 hoi tro cap that nghiep",
        kind="answer",
        entry_id="tctn-huong",
        topic="tctn",
        score=0.71,
        latency_ms=42.5,
    )
    with store.db.transaction() as s:
        row = s.get(RequestLog, rid)
        assert row is not None
        assert "0912 345 678" not in row.question and "09******78" in row.question
        assert (row.kind, row.entry_id, row.score, row.latency_ms) == ("answer", "tctn-huong", 0.71, 42.5)
        assert row.created_at is not None
    with pytest.raises(ValueError):
        store.requests.log("web", "s1", "x", kind="nonsense")

    fid = store.requests.add_feedback("web", "s1", False, request_id=rid, entry_id="tctn-huong", comment="chưa rõ")
    assert fid > 0

    uid = store.requests.log_unanswered("web", "s1", "hỏi gì đó rất lạ", request_id=rid)
    assert [u.id for u in store.requests.list_unanswered()] == [uid]
    store.requests.resolve_unanswered(uid, actor="canbo1", status="answered", officer_reply="Đã trả lời", entry_id="new-entry")
    assert store.requests.list_unanswered() == []
    done = store.requests.list_unanswered(status="answered")
    assert done[0].entry_id == "new-entry" and done[0].handled_by == "canbo1"
    audit = store.audit.entries()
    assert audit[0].action == "unanswered.answered" and audit[0].actor == "canbo1"


def test_conversation_state_roundtrip(store: Storage) -> None:
    assert store.states.get("telegram", "42") is None
    store.states.set("telegram", "42", {"flow": "dossier", "step": "await_receipt", "n": [1, 2]})
    assert store.states.get("telegram", "42") == {"flow": "dossier", "step": "await_receipt", "n": [1, 2]}
    store.states.set("telegram", "42", {"flow": "followup", "step": "name"})
    assert store.states.get("telegram", "42") == {"flow": "followup", "step": "name"}
    with store.db.transaction() as s:
        s.execute(update(ConversationState).values(updated_at=utcnow() - timedelta(hours=3)))
    assert store.states.get("telegram", "42", max_age=timedelta(hours=1)) is None
    store.states.set("telegram", "42", None)
    assert store.states.get("telegram", "42") is None


def test_outbox_retry_and_failure(store: Storage) -> None:
    oid = store.outbox.enqueue("zalo", "u1", "Xin chào", [Button("Xác nhận", "followup:confirm")])
    due = store.outbox.due()
    assert [m.id for m in due] == [oid]
    assert due[0].buttons == [Button("Xác nhận", "followup:confirm")]
    assert store.outbox.mark_failed(oid, "HTTP 502", max_attempts=2) == "pending"
    assert store.outbox.due() == []  # backed off
    with store.db.transaction() as s:
        s.execute(update(Outbox).values(next_attempt_at=utcnow()))
    assert store.outbox.mark_failed(oid, "HTTP 502", max_attempts=2) == "failed"
    assert store.outbox.due() == []
    oid2 = store.outbox.enqueue("zalo", "u1", "Lần hai")
    store.outbox.mark_sent(oid2)
    with store.db.transaction() as s:
        row = s.get(Outbox, oid2)
        assert row is not None and row.status == "sent" and row.attempts == 1 and row.sent_at is not None


def test_followups_and_users(store: Storage) -> None:
    fid = store.followups.create("web", "s9", "Nguyễn Văn An", "0912345678", "Hồ sơ chậm")
    assert store.followups.get(fid).status == "new"  # type: ignore[union-attr]
    store.followups.update(fid, actor="canbo1", status="in-progress", assigned_to="canbo1", notes="Đã gọi")
    f = store.followups.get(fid)
    assert f is not None and (f.status, f.assigned_to, f.notes) == ("in-progress", "canbo1", "Đã gọi")
    with pytest.raises(ValueError):
        store.followups.update(fid, actor="canbo1", status="closed")
    assert [x.id for x in store.followups.recent(status="in-progress")] == [fid]

    store.users.add("admin", "pbkdf2$...", role="admin")
    u = store.users.get("admin")
    assert u is not None and u.role == "admin" and u.active
    store.users.set_active("admin", False, actor="root")
    assert store.users.get("admin").active is False  # type: ignore[union-attr]

    with pytest.raises(AlreadyExists):
        store.users.add("admin", "other-hash", role="officer")
    assert [x.action for x in store.audit.entries(action_prefix="user.")] == ["user.deactivate", "user.create"]
    with store.db.transaction() as s:
        assert s.scalar(select(Outbox.id)) is None


def test_outbox_claim_and_the_web_chat_acknowledgement(store: Storage) -> None:
    oid = store.outbox.enqueue("telegram", "7", "Xin chào")
    assert store.outbox.claim(oid) is True
    assert store.outbox.claim(oid) is False  # claimed: not due for another process
    assert store.outbox.due("telegram") == []

    w1 = store.outbox.enqueue("web", "chat-0001", "một")
    w2 = store.outbox.enqueue("web", "chat-0001", "hai")
    store.outbox.enqueue("web", "chat-0002", "người khác")
    assert [m.text for m in store.outbox.pending_for_chat("web", "chat-0001")] == ["một", "hai"]
    assert [m.text for m in store.outbox.pending_for_chat("web", "chat-0001")] == ["một", "hai"]  # reading is safe
    assert store.outbox.acknowledge("web", "chat-0002", [w1]) == 0  # another chat's message: refused
    assert store.outbox.acknowledge("web", "chat-0001", [w1, w2]) == 2
    assert store.outbox.acknowledge("web", "chat-0001", [w1]) == 0
    assert store.outbox.pending_for_chat("web", "chat-0001") == []
