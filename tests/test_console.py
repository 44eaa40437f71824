"""The officers' console (handlers.console) through FastAPI's TestClient, on SQLite and PostgreSQL, with
the tiny test knowledge base and the fake embedder."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from bot.config import Settings, load_settings
from bot.dialogue import Dialogue
from bot.messages import Incoming
from bot.models import AuditLog, ConsoleSession, DossierImport, KbDraft, Outbox, Unanswered, User
from bot.runtime import AssistantHolder
from bot.store import Store
from handlers.console import Console, ConsoleOptions, console_router
from handlers.console.security import hash_password
from indexer.embed import HashingEmbedder
from indexer.index import build_index
from indexer.knowledge import load_knowledge

try:
    from tests.db_fixtures import db_url, migrated_url, store  # noqa: F401
except ImportError:  # pragma: no cover
    from db_fixtures import db_url, migrated_url, store  # type: ignore[no-redef]  # noqa: F401

HERE = Path(__file__).resolve().parent
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
ADMIN_PW = "mat-khau-quan-tri-1"
OFFICER_PW = "mat-khau-can-bo-1"
WEATHER = "Hôm nay thời tiết Hà Nội thế nào?"


@dataclass
class Env:
    settings: Settings
    store: Store
    holder: AssistantHolder
    dialogue: Dialogue
    console: Console
    app: FastAPI

    def client(self) -> TestClient:
        return TestClient(self.app)

    def ask(self, text: str, chat: str, channel: str = "web") -> str:
        replies = self.dialogue.handle(Incoming(channel, chat, text=text))
        return replies[0].kind

    def press(self, payload: str, chat: str, channel: str = "web") -> str:
        return self.dialogue.handle(Incoming(channel, chat, payload=payload))[0].kind


def make_settings(mini_kb: Path, tmp_path: Path, url: str) -> Settings:
    return load_settings(
        knowledge_dir=mini_kb, data_dir=tmp_path / "var", embedding_model="fake-hashing-256",
        database_url=url, min_dense_for_answer=0.0, dense_weight=0.3, answer_threshold=0.5,
        choice_threshold=0.3, dept_name="Sở Thử Nghiệm", dept_hotline="0203 999 999",
    )


@pytest.fixture
def env(store: Store, migrated_url: str, tmp_path: Path, mini_kb: Path) -> Env:
    settings = make_settings(mini_kb, tmp_path, migrated_url)
    build_index(settings.knowledge_dir, settings.index_root, HashingEmbedder(256))
    holder = AssistantHolder(settings, embedder=HashingEmbedder(256), active_version=store.active_kb_version)
    dialogue = Dialogue.from_settings(settings, store=store, holder=holder)
    dialogue.flood_per_minute = 0
    options = ConsoleOptions(secure_cookies=False, login_max_failures=3, group_threshold=0.6, idle_minutes=30)
    router = console_router(settings, holder, store, options=options)
    app = FastAPI()
    app.include_router(router, prefix="/console")
    store.add_user("admin", hash_password(ADMIN_PW), "admin")
    store.add_user("canbo", hash_password(OFFICER_PW), "officer")
    return Env(settings, store, holder, dialogue, router.console, app)  # type: ignore[attr-defined]


def login(client: TestClient, username: str, password: str):
    page = client.get("/console/login")
    token = CSRF_RE.search(page.text).group(1)  # type: ignore[union-attr]
    return client.post("/console/login", data={"username": username, "password": password, "csrf_token": token},
                       follow_redirects=False)


def signed_in(env: Env, username: str = "admin") -> TestClient:
    client = env.client()
    r = login(client, username, ADMIN_PW if username == "admin" else OFFICER_PW)
    assert r.status_code == 303, r.text
    return client


def csrf(client: TestClient) -> str:
    r = client.get("/console/followups")
    assert r.status_code == 200
    m = CSRF_RE.search(r.text)
    assert m
    return m.group(1)


def audit_actions(store: Store) -> list[str]:
    with store.session() as s:
        return [a.action for a in s.scalars(select(AuditLog).order_by(AuditLog.id))]


# --- accounts and access ---------------------------------------------------------------------------

def test_login_ok_and_bad_and_cookie_attributes(env: Env) -> None:
    client = env.client()
    r = client.get("/console/unanswered", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/login"
    r = login(client, "admin", "sai-mat-khau")
    assert r.status_code == 401 and "không đúng" in r.text
    r = login(client, "khong-co-ai", "sai-mat-khau")
    assert r.status_code == 401
    r = login(client, "admin", ADMIN_PW)
    assert r.status_code == 303 and r.headers["location"] == "/console/"
    cookie = r.headers["set-cookie"]
    assert "ldtbxh_console=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Path=/console" in cookie
    page = client.get("/console/unanswered")
    assert page.status_code == 200 and "admin (Quản trị)" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    with env.store.session() as s:
        row = s.scalars(select(ConsoleSession)).one()
        assert row.username == "admin" and len(row.id) == 64  # only the token's hash is stored
        assert row.id not in cookie
    # logout ends the session
    r = client.post("/console/logout", data={"csrf_token": csrf(client)}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/console/unanswered", follow_redirects=False).status_code == 303
    actions = audit_actions(env.store)
    assert actions.count("auth.login_failed") == 2 and "auth.login" in actions and "auth.logout" in actions


def test_cookies_are_secure_by_default(env: Env) -> None:
    app = FastAPI()
    app.include_router(console_router(env.settings, env.holder, env.store), prefix="/console")
    client = TestClient(app, base_url="https://testserver")
    r = login(client, "admin", ADMIN_PW)
    assert r.status_code == 303
    assert "; Secure" in r.headers["set-cookie"] or "; secure" in r.headers["set-cookie"]
    assert client.get("/console/unanswered").status_code == 200


def test_login_throttling_per_user_and_address(env: Env) -> None:
    client = env.client()
    for _ in range(3):
        assert login(client, "canbo", "doan-mo-mat-khau").status_code == 401
    r = login(client, "canbo", OFFICER_PW)  # even the right password is refused now
    assert r.status_code == 429 and "quá nhiều lần" in r.text
    assert login(client, "admin", ADMIN_PW).status_code == 303  # another account is not affected
    actions = audit_actions(env.store)
    assert actions.count("auth.login_failed") == 3 and "auth.login_throttled" in actions
    # the window passes (pretend the failures are old): sign-in works again
    with env.store.session() as s:
        for row in s.scalars(select(AuditLog).where(AuditLog.action == "auth.login_failed")):
            row.created_at -= timedelta(hours=1)
    assert login(env.client(), "canbo", OFFICER_PW).status_code == 303


def test_csrf_is_checked_on_every_form(env: Env) -> None:
    client = signed_in(env, "admin")
    token = csrf(client)
    for path in ("/console/unanswered/reply", "/console/knowledge/rebuild", "/console/followups/1/update",
                 "/console/logout", "/console/users"):
        assert client.post(path, data={}).status_code == 403, path
        assert client.post(path, data={"csrf_token": "sai"}).status_code == 403, path
    r = client.post("/console/unanswered/reply", data={"csrf_token": token, "ids": ""}, follow_redirects=False)
    assert r.status_code == 303  # the right token passes
    r = client.post("/console/unanswered/reply", data={"ids": ""}, headers={"X-CSRF-Token": token},
                    follow_redirects=False)
    assert r.status_code == 303
    # the sign-in form too
    fresh = env.client()
    fresh.get("/console/login")
    r = fresh.post("/console/login", data={"username": "admin", "password": ADMIN_PW, "csrf_token": "gia"})
    assert r.status_code == 403
    assert audit_actions(env.store).count("auth.csrf_rejected") >= 11


def test_officer_cannot_do_administrator_actions(env: Env) -> None:
    client = signed_in(env, "canbo")
    token = csrf(client)
    draft = _make_draft(env)
    for path, data in (("/console/knowledge/rebuild", {}), ("/console/knowledge/rollback", {}),
                       ("/console/knowledge/switch", {"version": "x"}),
                       (f"/console/knowledge/drafts/{draft}/approve", {"topic": "ncc-muc-chuan"}),
                       (f"/console/knowledge/drafts/{draft}/reject", {}),
                       ("/console/users", {"username": "x", "password": "y" * 12})):
        r = client.post(path, data={"csrf_token": token, **data})
        assert r.status_code == 403, path
        assert "chỉ dành cho quản trị viên" in r.text
    assert client.get("/console/users").status_code == 403
    assert client.get("/console/audit").status_code == 403
    assert client.get("/console/knowledge").status_code == 200  # officers may look
    assert env.console.rebuilder.status.state == "idle"
    with env.store.session() as s:
        assert s.get(KbDraft, draft).status == "draft"  # type: ignore[union-attr]
    assert audit_actions(env.store).count("auth.forbidden") == 8


def test_session_expires_when_idle(env: Env) -> None:
    client = signed_in(env, "canbo")
    assert client.get("/console/followups").status_code == 200
    with env.store.session() as s:
        for row in s.scalars(select(ConsoleSession)):
            row.last_seen_at -= timedelta(minutes=31)
    r = client.get("/console/followups", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/login?het_han=1"
    assert "hết hạn" in client.get(r.headers["location"]).text
    with env.store.session() as s:
        assert s.scalars(select(ConsoleSession)).first() is None
    # a deactivated account's session stops working at once
    client = signed_in(env, "canbo")
    env.store.set_user_active("canbo", False, actor="admin")
    assert client.get("/console/followups", follow_redirects=False).status_code == 303


def test_users_page_add_and_reset(env: Env) -> None:
    client = signed_in(env, "admin")
    token = csrf(client)
    r = client.post("/console/users", data={"csrf_token": token, "username": "moi", "role": "officer",
                                             "password": "ngan"})
    assert "ít nhất" in r.text  # too short
    client.post("/console/users", data={"csrf_token": token, "username": "moi", "role": "officer",
                                         "password": "mat-khau-moi-123"})
    assert login(env.client(), "moi", "mat-khau-moi-123").status_code == 303
    client.post("/console/users/moi/update", data={"csrf_token": token, "action": "password",
                                                    "password": "mat-khau-khac-456"})
    assert login(env.client(), "moi", "mat-khau-moi-123").status_code == 401
    assert login(env.client(), "moi", "mat-khau-khac-456").status_code == 303
    assert {"user.create", "user.reset_password"} <= set(audit_actions(env.store))


# --- unanswered questions ----------------------------------------------------------------------------

def _seed_unanswered(env: Env) -> None:
    assert env.ask(WEATHER, "w1") == "fallback"
    assert env.ask("hôm nay thời tiết hà nội thế nào", "w2") == "fallback"
    assert env.ask("Hôm nay thời tiết Hà Nội thế nào vậy", "t1", channel="telegram") == "fallback"
    assert env.ask(WEATHER, "w1") == "fallback"  # the same citizen again: one message only
    assert env.ask("Giá vàng hôm nay bao nhiêu?", "z1", channel="zalo") in ("fallback", "choices")
    # "chưa hữu ích" on an answer also lands in the queue
    assert env.ask("Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?", "w3") == "answer"
    env.press("fb:0", "w3")


def _make_draft(env: Env) -> int:
    from handlers.console.replies import create_draft

    return create_draft(env.store, question="Q?", paraphrases=[], answer="A.", topic="ncc-muc-chuan",
                        author="canbo", unanswered_ids=[])


def test_unanswered_grouping_candidates_and_filters(env: Env) -> None:
    _seed_unanswered(env)
    client = signed_in(env, "canbo")
    page = client.get("/console/unanswered").text
    assert "4 câu hỏi" in page and "3 công dân" in page  # the weather group
    assert "Web: 3" in page and "Telegram: 1" in page
    assert "Nội dung gần nhất trợ lý đang có" in page and "tctn-huong" in page
    assert "Chưa hữu ích" in page
    feedback_only = client.get("/console/unanswered", params={"source": "feedback"}).text
    assert "Trợ cấp thất nghiệp được hưởng" in feedback_only and "thời tiết" not in feedback_only
    telegram = client.get("/console/unanswered", params={"channel": "telegram"}).text
    assert "1 câu hỏi" in telegram and "Hà Nội thế nào vậy" in telegram
    assert "thời tiết" not in client.get("/console/unanswered", params={"q": "vàng"}).text


def test_reply_reaches_every_citizen_of_the_group_through_the_outbox(env: Env) -> None:
    _seed_unanswered(env)
    client = signed_in(env, "canbo")
    page = client.get("/console/unanswered").text
    ids = re.search(r'name="ids" value="([0-9,]+)"', page).group(1)  # type: ignore[union-attr]
    assert len(ids.split(",")) == 4  # the biggest group comes first
    r = client.post("/console/unanswered/reply", data={
        "csrf_token": csrf(client), "ids": ids, "action": "reply", "topic": "",
        "reply": "Trợ lý chỉ trả lời về lao động, người có công và xã hội. Gọi {dept_hotline} nếu cần."})
    assert r.status_code == 200 and "Đã gửi trả lời tới 3 công dân (4 câu hỏi)" in r.text
    with env.store.session() as s:
        out = {(o.channel, o.chat_id): o.text for o in s.scalars(select(Outbox))}
        statuses = {u.id: (u.status, u.handled_by) for u in s.scalars(select(Unanswered))}
    assert set(out) == {("web", "w1"), ("web", "w2"), ("telegram", "t1")}
    assert all("0203 999 999" in t and "Sở Thử Nghiệm" in t for t in out.values())
    assert all(statuses[int(i)] == ("answered", "canbo") for i in ids.split(","))
    assert sum(1 for st, _ in statuses.values() if st == "new") == len(statuses) - 4
    # replying again sends nothing more (already handled)
    r = client.post("/console/unanswered/reply", data={"csrf_token": csrf(client), "ids": ids, "reply": "x"})
    assert "đã được người khác xử lý" in r.text
    with env.store.session() as s:
        assert len(s.scalars(select(Outbox)).all()) == 3
    assert "unanswered.reply" in audit_actions(env.store)
    answered = client.get("/console/unanswered", params={"status": "answered"}).text
    assert "Đã trả lời" in answered and "Tạo bản nháp hỏi–đáp" in answered


def test_reply_checks_its_text_and_dismiss(env: Env) -> None:
    _seed_unanswered(env)
    client = signed_in(env, "canbo")
    token = csrf(client)
    ids = ",".join(str(u.id) for u in env.store.list_unanswered())
    assert "trống" in client.post("/console/unanswered/reply", data={"csrf_token": token, "ids": ids,
                                                                     "reply": "  "}).text
    assert "tối đa" in client.post("/console/unanswered/reply", data={"csrf_token": token, "ids": ids,
                                                                      "reply": "x" * 1300}).text
    assert "{ten_la}" in client.post("/console/unanswered/reply", data={"csrf_token": token, "ids": ids,
                                                                        "reply": "gọi {ten_la}"}).text
    r = client.post("/console/unanswered/reply", data={"csrf_token": token, "ids": ids, "action": "dismiss"})
    assert f"Đã bỏ qua {len(ids.split(','))} câu hỏi" in r.text
    assert env.store.list_unanswered() == []


# --- drafts and the knowledge base --------------------------------------------------------------------

def _reply_with_draft(env: Env, client: TestClient) -> int:
    page = client.get("/console/unanswered").text
    ids = re.search(r'name="ids" value="([0-9,]+)"', page).group(1)  # type: ignore[union-attr]
    r = client.post("/console/unanswered/reply", data={
        "csrf_token": csrf(client), "ids": ids, "action": "reply_draft", "topic": "lien-he-gio-lam-viec",
        "reply": "Trợ lý không có thông tin thời tiết. Bạn xem dự báo của Trung tâm Khí tượng Thủy văn."})
    assert "bản nháp hỏi–đáp số" in r.text
    with env.store.session() as s:
        d = s.scalars(select(KbDraft)).one()
        assert d.status == "draft" and d.author == "canbo" and d.topic == "lien-he-gio-lam-viec"
        assert d.question == WEATHER and d.paraphrases == ["Hôm nay thời tiết Hà Nội thế nào vậy"]
        assert sorted(d.unanswered_ids or []) == sorted(int(i) for i in ids.split(","))
        return d.id


def _approve(env: Env, client: TestClient, draft_id: int, **extra: str):
    page = client.get(f"/console/knowledge/drafts/{draft_id}").text
    question = re.search(r'id="question" name="question" value="([^"]*)"', page).group(1)  # type: ignore[union-attr]
    paraphrases = re.search(r'name="paraphrases" rows="5">([^<]*)</textarea>', page).group(1)  # type: ignore[union-attr]
    answer = re.search(r'name="answer" rows="6" required>([^<]*)</textarea>', page).group(1)  # type: ignore[union-attr]
    data = {"csrf_token": csrf(client), "question": question.replace("&#34;", '"'), "paraphrases": paraphrases,
            "answer": answer, "topic": "lien-he-gio-lam-viec", "legal_basis": "Quy chế tiếp công dân của Sở",
            "valid_from": "2026-01-01", "source": ""}
    data.update(extra)
    return client.post(f"/console/knowledge/drafts/{draft_id}/approve", data=data)


def test_draft_approval_writes_a_valid_entry(env: Env) -> None:
    _seed_unanswered(env)
    draft_id = _reply_with_draft(env, signed_in(env, "canbo"))
    admin = signed_in(env, "admin")
    assert "Bản nháp hỏi–đáp chờ duyệt (1)" in admin.get("/console/knowledge").text
    target = env.settings.knowledge_dir / "qa" / "lien-he-gio-lam-viec.yaml"
    assert not target.exists()
    # an invalid entry is refused with file:line errors, and nothing is written
    r = _approve(env, admin, draft_id, answer="Gọi {so_dien_thoai_la}")
    assert r.status_code == 422
    assert "knowledge/qa/lien-he-gio-lam-viec.yaml:" in r.text and "unknown placeholder" in r.text
    assert not target.exists()
    r = _approve(env, admin, draft_id, legal_basis="")
    assert r.status_code == 422 and "căn cứ pháp lý" in r.text
    r = _approve(env, admin, draft_id)
    assert r.status_code == 200 and "lien-he-gio-lam-viec-hoi-dap-1" in r.text
    data = yaml.safe_load(target.read_text(encoding="utf-8"))
    entry = data[0]
    assert entry["id"] == "lien-he-gio-lam-viec-hoi-dap-1" and entry["topic"] == "lien-he-gio-lam-viec"
    assert entry["question"] == WEATHER and entry["paraphrases"] == ["Hôm nay thời tiết Hà Nội thế nào vậy"]
    assert entry["legal_basis"] == ["Quy chế tiếp công dân của Sở"] and str(entry["valid_from"]) == "2026-01-01"
    kb = load_knowledge(env.settings.knowledge_dir)
    assert not kb.errors and "lien-he-gio-lam-viec-hoi-dap-1" in kb.by_id()
    with env.store.session() as s:
        d = s.get(KbDraft, draft_id)
        assert d is not None and d.status == "approved" and d.reviewer == "admin"
        linked = s.scalars(select(Unanswered).where(Unanswered.entry_id == d.entry_id)).all()
        assert len(linked) == 4
    # a second approval in an existing file appends the next number
    second = _make_draft(env)
    r = _approve(env, admin, second)
    assert "lien-he-gio-lam-viec-hoi-dap-2" in r.text
    assert [e["id"] for e in yaml.safe_load(target.read_text(encoding="utf-8"))] == [
        "lien-he-gio-lam-viec-hoi-dap-1", "lien-he-gio-lam-viec-hoi-dap-2"]
    assert not load_knowledge(env.settings.knowledge_dir).errors
    assert {"draft.create", "draft.approve", "draft.approve_refused"} <= set(audit_actions(env.store))


def test_rebuild_switch_and_rollback(env: Env) -> None:
    _seed_unanswered(env)
    draft_id = _reply_with_draft(env, signed_in(env, "canbo"))
    admin = signed_in(env, "admin")
    _approve(env, admin, draft_id)
    old = env.holder.version
    assert env.ask(WEATHER, "w9") == "fallback"

    r = admin.post("/console/knowledge/rebuild", data={"csrf_token": csrf(admin)})
    assert r.status_code == 200
    status = env.console.rebuilder.wait(60)
    assert status.state == "done", status.errors
    new = status.version
    assert new and new != old
    js = admin.get("/console/knowledge/status").json()
    assert js["state"] == "done" and js["percent"] == 100 and js["serving"] == old
    assert env.ask(WEATHER, "w9") == "fallback"  # not switched yet

    other = AssistantHolder(env.settings, embedder=HashingEmbedder(256), active_version=env.store.active_kb_version)
    assert other.current is not None  # "another process" serving the old version

    page = admin.get("/console/knowledge").text
    assert "Chuyển sang phiên bản mới" in page
    r = admin.post("/console/knowledge/switch", data={"csrf_token": csrf(admin), "version": new})
    assert "Trợ lý đang dùng phiên bản" in r.text
    assert env.holder.version == new and env.store.active_kb_version() == new
    reply = env.dialogue.handle(Incoming("web", "w9", text=WEATHER))[0]
    assert reply.kind == "answer" and reply.entry_id == "lien-he-gio-lam-viec-hoi-dap-1"
    assert other.check_reload() and other.version == new  # the other process follows the database

    r = admin.post("/console/knowledge/rollback", data={"csrf_token": csrf(admin)})
    assert "Đã quay lại" in r.text
    assert env.holder.version == old and env.store.active_kb_version() == old
    assert env.ask(WEATHER, "w10") == "fallback"
    r = admin.post("/console/knowledge/rollback", data={"csrf_token": csrf(admin)})
    assert "Không có phiên bản trước" in r.text
    assert {"kb.rebuild_start", "kb.rebuild", "kb.switch", "kb.rollback", "kb.activate"} <= set(
        audit_actions(env.store))


def test_rebuild_refuses_a_broken_knowledge_base(env: Env) -> None:
    admin = signed_in(env, "admin")
    bad = env.settings.knowledge_dir / "qa" / "ncc-muc-chuan.yaml"
    bad.write_text(bad.read_text(encoding="utf-8") + "- id: Sai Ma\n  topic: khong-co\n", encoding="utf-8")
    admin.post("/console/knowledge/rebuild", data={"csrf_token": csrf(admin)})
    status = env.console.rebuilder.wait(60)
    assert status.state == "failed"
    page = admin.get("/console/knowledge").text
    assert "ncc-muc-chuan.yaml:" in page and "Dựng thất bại" in page


def test_needs_review_entries_are_listed(env: Env) -> None:
    qa = env.settings.knowledge_dir / "qa" / "ncc-muc-chuan.yaml"
    qa.write_text(qa.read_text(encoding="utf-8").rstrip() + "\n  needs_review: true\n", encoding="utf-8")
    before = sum(e.needs_review for e in load_knowledge(env.settings.knowledge_dir).entries)
    page = signed_in(env, "canbo").get("/console/knowledge").text
    assert f"Mục cần rà soát (needs_review) — {before}" in page and "ncc-liet-si-test" in page


# --- follow-ups -----------------------------------------------------------------------------------------

def test_followup_ticket_notes_and_reply(env: Env) -> None:
    env.ask("Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?", "t7", channel="telegram")
    fid = env.store.create_followup("telegram", "t7", "Nguyễn Văn An", "0912345678", "Hỏi về trợ cấp")
    client = signed_in(env, "canbo")
    listing = client.get("/console/followups").text
    assert f"#{fid}" in listing and "Nguyễn Văn An" in listing
    ticket = client.get(f"/console/followups/{fid}").text
    assert "0912345678" in ticket and "Trợ cấp thất nghiệp được hưởng" in ticket  # the conversation
    token = csrf(client)
    client.post(f"/console/followups/{fid}/update", data={"csrf_token": token, "status": "in-progress",
                                                          "assigned_to": "canbo", "notes": "Đã gọi lần 1"})
    f = env.store.get_followup(fid)
    assert f is not None and (f.status, f.assigned_to, f.notes) == ("in-progress", "canbo", "Đã gọi lần 1")
    r = client.post(f"/console/followups/{fid}/reply", data={"csrf_token": token, "done": "1",
                                                             "reply": "Hồ sơ của bạn đủ điều kiện."})
    assert "Đã gửi phản hồi" in r.text
    with env.store.session() as s:
        out = s.scalars(select(Outbox)).one()
    assert (out.channel, out.chat_id) == ("telegram", "t7") and "Hồ sơ của bạn đủ điều kiện" in out.text
    f = env.store.get_followup(fid)
    assert f is not None and f.status == "done" and "Đã trả lời qua telegram" in (f.notes or "")
    assert "Hồ sơ của bạn đủ điều kiện" in client.get(f"/console/followups/{fid}").text
    assert "done" in client.get("/console/followups", params={"status": "done"}).text
    assert {"followup.view", "followup.update", "followup.reply"} <= set(audit_actions(env.store))


# --- dossiers ----------------------------------------------------------------------------------------------

def test_dossier_upload_shows_the_import_report(env: Env) -> None:
    client = signed_in(env, "canbo")
    token = csrf(client)
    path = HERE / "data" / "dossiers" / "messy.csv"
    r = client.post("/console/dossiers", data={"csrf_token": token},
                    files={"file": ("messy.csv", path.read_bytes(), "text/csv")})
    assert r.status_code == 200 and "Kết quả nhập tệp messy.csv" in r.text
    inserted = int(re.search(r'id="so-them-moi">(\d+)<', r.text).group(1))  # type: ignore[union-attr]
    failed = int(re.search(r'id="so-loi">(\d+)<', r.text).group(1))  # type: ignore[union-attr]
    assert inserted > 0 and failed > 0 and "dòng " in r.text
    with env.store.session() as s:
        imp = s.scalars(select(DossierImport)).one()
        assert imp.filename == "messy.csv" and imp.actor == "canbo"
    r = client.post("/console/dossiers", data={"csrf_token": token},
                    files={"file": ("virus.exe", b"MZ", "application/octet-stream")})
    assert r.status_code == 400 and ".csv hoặc .xlsx" in r.text
    r = client.post("/console/dossiers", data={"csrf_token": token},
                    files={"file": ("rong.csv", b"", "text/csv")})
    assert r.status_code == 400 and "Không nhập được" in r.text
    assert "dossiers.import" in audit_actions(env.store)


# --- dashboard -----------------------------------------------------------------------------------------------

def test_dashboard_and_csv_export(env: Env) -> None:
    _seed_unanswered(env)
    env.ask("Mức chuẩn trợ cấp ưu đãi người có công là bao nhiêu?", "w5")
    env.press("fb:1", "w5")
    client = signed_in(env, "canbo")
    page = client.get("/console/dashboard").text
    assert page.count("<svg") >= 6 and 'role="img"' in page
    questions = int(re.search(r'id="kpi-questions">(\d+)<', page).group(1))  # type: ignore[union-attr]
    assert questions == 7
    assert "Số câu hỏi mỗi ngày" in page and "Chủ đề được hỏi nhiều nhất" in page
    assert "Giải quyết hưởng trợ cấp thất nghiệp" in page  # a top topic by title
    assert "thời tiết" in page.lower()  # top unanswered group
    assert "50%" in page  # one helpful, one not
    r = client.get("/console/dashboard.csv", params={"days": "7"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    lines = r.text.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("ngay,so_cau_hoi,tra_loi")
    assert len(lines) == 8
    today = [line for line in lines[1:] if line.split(",")[1] != "0"]
    assert len(today) == 1 and today[0].split(",")[1] == "7"
    topics = client.get("/console/dashboard.csv", params={"bang": "chu-de"}).text
    assert "tctn-huong" in topics
    groups = client.get("/console/dashboard.csv", params={"bang": "chua-tra-loi"}).text
    assert "thời tiết" in groups.lower()
    assert "dashboard.export" in audit_actions(env.store)
    custom = client.get("/console/dashboard", params={"tu": "2026-01-01", "den": "2026-01-03"}).text
    assert "01/01/2026" in custom and "03/01/2026" in custom


# --- the users CLI -------------------------------------------------------------------------------------------

def test_users_cli_add_reset_list(store: Store, migrated_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.config import get_settings
    from handlers.cli import app

    monkeypatch.setenv("LDTBXH_DATABASE_URL", migrated_url)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        r = runner.invoke(app, ["users", "add", "admin", "--role", "admin"],
                          input="mat-khau-dai-123\nmat-khau-dai-123\n")
        assert r.exit_code == 0, r.output
        user = store.get_user("admin")
        assert user is not None and user.role == "admin" and user.password_hash.startswith("$argon2")
        r = runner.invoke(app, ["users", "add", "admin"], input="x\nx\n")
        assert r.exit_code == 1
        r = runner.invoke(app, ["users", "add", "b", "--role", "boss"])
        assert r.exit_code == 2
        r = runner.invoke(app, ["users", "add", "canbo"], input="ngan\nngan\nkhac-nhau-123\nkhac-nhau-456\n"
                                                              "mat-khau-dung-1\nmat-khau-dung-1\n")
        assert r.exit_code == 0, r.output
        assert "ít nhất" in r.output
        r = runner.invoke(app, ["users", "reset-password", "canbo"], input="mat-khau-moi-99\nmat-khau-moi-99\n")
        assert r.exit_code == 0, r.output
        from handlers.console.security import verify_password

        u = store.get_user("canbo")
        assert u is not None and verify_password(u.password_hash, "mat-khau-moi-99")
        r = runner.invoke(app, ["users", "list"])
        assert "admin\tadmin\tactive" in r.output and "canbo\tofficer\tactive" in r.output
        r = runner.invoke(app, ["users", "reset-password", "khong-co"])
        assert r.exit_code == 1
        with store.session() as s:
            assert s.scalars(select(User)).all()
            assert {"user.create", "user.reset_password"} <= {a.action for a in s.scalars(select(AuditLog))}
    finally:
        get_settings.cache_clear()


# --- mounted in the real application -----------------------------------------------------------------------

def test_console_inside_create_app(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    app_module = pytest.importorskip("handlers.app")
    monkeypatch.setenv("LDTBXH_CONSOLE_SECURE_COOKIES", "false")
    app = app_module.create_app(env.settings, env.dialogue, channels=[],
                                options=app_module.ServeOptions(reload_seconds=3600))
    with TestClient(app) as client:
        assert client.get("/console/login").status_code == 200
        assert login(client, "canbo", OFFICER_PW).status_code == 303
        r = client.post("/api/chat", json={"chat_id": "wabc123456", "text": WEATHER})
        assert r.json()["replies"][0]["kind"] == "fallback"
        page = client.get("/console/unanswered").text
        ids = re.search(r'name="ids" value="([0-9,]+)"', page).group(1)  # type: ignore[union-attr]
        client.post("/console/unanswered/reply", data={"csrf_token": csrf(client), "ids": ids,
                                                       "reply": "Xin lỗi, chưa có thông tin."})
        msgs = client.get("/api/chat/wabc123456/messages").json()["messages"]
        assert any("chưa có thông tin" in m["text"] for m in msgs)
        assert client.post("/console/knowledge/rebuild", data={"csrf_token": csrf(client)}).status_code == 403
        assert client.get("/healthz").status_code == 200


def test_valid_from_defaults_to_today(env: Env) -> None:
    admin = signed_in(env, "admin")
    page = admin.get(f"/console/knowledge/drafts/{_make_draft(env)}").text
    assert f'value="{dt.date.today().isoformat()}"' in page
