"""The officers' console (handlers.console) through FastAPI's TestClient, on SQLite and PostgreSQL, with
the tiny test knowledge base and the fake embedder."""

from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from bot.config import Settings
from bot.dialogue import Dialogue
from bot.messages import Incoming
from bot.runtime import AssistantHolder
from bot.storage import Storage
from bot.storage.models import AuditLog, ConsoleSession, DossierImport, KbDraft, Outbox, Unanswered, User
from handlers.console.core import Console
from handlers.console.router import console_router
from handlers.console.security import hash_password
from handlers.server import create_app
from indexer.index import current_version
from indexer.knowledge import load_knowledge
from tests.fakes import HashingEmbedder
from tests.support import build_fake_index, make_settings

HERE = Path(__file__).resolve().parent
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
ADMIN_PW = "mat-khau-quan-tri-1"
OFFICER_PW = "mat-khau-can-bo-1"
WEATHER = "Hôm nay thời tiết Hà Nội thế nào?"


@dataclass
class Env:
    settings: Settings
    store: Storage
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


CONSOLE = {"secure_cookies": False, "login_max_failures": 3, "group_threshold": 0.6, "idle_minutes": 30}


@pytest.fixture
def env(store: Storage, migrated_url: str, tmp_path: Path, mini_kb: Path) -> Env:
    settings = make_settings(tmp_path, mini_kb, database_url=migrated_url, console=CONSOLE,
                             department={"dept_hotline": "0203 999 999"})
    build_fake_index(settings)
    holder = AssistantHolder(settings, embedder=HashingEmbedder(256))
    dialogue = Dialogue.from_settings(settings, store=store, holder=holder)
    dialogue.flood_per_minute = 0
    router = console_router(settings, holder, store)
    app = FastAPI()
    app.include_router(router, prefix="/console")
    store.users.add("admin", hash_password(ADMIN_PW), "admin")
    store.users.add("canbo", hash_password(OFFICER_PW), "officer")
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


def audit_actions(store: Storage) -> list[str]:
    with store.db.transaction() as s:
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
    with env.store.db.transaction() as s:
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
    settings = env.settings.model_copy(update={"console": type(env.settings.console)()})  # the defaults
    app = FastAPI()
    app.include_router(console_router(settings, env.holder, env.store), prefix="/console")
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
    with env.store.db.transaction() as s:
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
    with env.store.db.transaction() as s:
        assert s.get(KbDraft, draft).status == "draft"  # type: ignore[union-attr]
    assert audit_actions(env.store).count("auth.forbidden") == 8


ADMIN_ONLY = {"console_users", "console_users_add", "console_users_update", "console_audit",
              "console_knowledge_rebuild", "console_knowledge_switch", "console_knowledge_rollback", "console_knowledge_confirm",
              "console_draft_approve", "console_draft_reject",
              "console_documents_upload", "console_documents_retire_confirm", "console_documents_retire",
              "console_documents_rebuild"}
PUBLIC = {"console_login", "console_login_post"}


def test_every_console_route_as_an_officer(env: Env) -> None:
    """Walk every route of the console with an officer's session: the administrators' ones refuse it (403
    and the reason), every other one serves it. A new route must be classified here."""
    from fastapi.routing import APIRoute

    draft = _make_draft(env)
    fid = env.store.followups.create("web", "w-walk", "Nguyễn Văn An", "0912345678", "Hỏi")
    params = {"draft_id": str(draft), "fid": str(fid), "username": "admin", "iid": "1"}
    def flat(router: Any) -> list[APIRoute]:  # the page routers are included without a prefix
        out: list[APIRoute] = []
        for r in router.routes:
            inner = getattr(r, "original_router", None)
            out += flat(inner) if inner is not None else [r] if isinstance(r, APIRoute) else []
        return out

    routes = flat(console_router(env.settings, env.holder, env.store))
    names = {r.name for r in routes}
    assert names - PUBLIC - {"console_logout"} - ADMIN_ONLY, "no officer page?"
    assert names >= ADMIN_ONLY
    client = signed_in(env, "canbo")
    token = csrf(client)
    seen: set[str] = set()
    for route in sorted(routes, key=lambda r: r.name == "console_logout"):  # sign out last
        path = "/console" + route.path
        for key, value in params.items():
            path = path.replace("{" + key + "}", value)
        for method in sorted(route.methods or ()):
            if method == "GET":
                r = client.get(path, follow_redirects=False)
            else:
                r = client.post(path, data={"csrf_token": token}, follow_redirects=False)
            seen.add(route.name)
            if route.name in PUBLIC:  # sign-in has its own CSRF token (a cookie): not the session's
                assert "chỉ dành cho quản trị viên" not in r.text
            elif route.name in ADMIN_ONLY:
                assert r.status_code == 403, (method, path, r.status_code)
                assert "chỉ dành cho quản trị viên" in r.text
            else:
                assert r.status_code in (200, 303, 400, 422), (method, path, r.status_code)
                assert r.headers.get("location") != "/console/login" or route.name == "console_logout", path
    assert seen == names
    refused = [a for a in audit_actions(env.store) if a == "auth.forbidden"]
    assert len(refused) == len(ADMIN_ONLY)


def test_session_expires_when_idle(env: Env) -> None:
    client = signed_in(env, "canbo")
    assert client.get("/console/followups").status_code == 200
    with env.store.db.transaction() as s:
        for row in s.scalars(select(ConsoleSession)):
            row.last_seen_at -= timedelta(minutes=31)
    r = client.get("/console/followups", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/login?het_han=1"
    assert "hết hạn" in client.get(r.headers["location"]).text
    with env.store.db.transaction() as s:
        assert s.scalars(select(ConsoleSession)).first() is None
    # a deactivated account's session stops working at once
    client = signed_in(env, "canbo")
    env.store.users.set_active("canbo", False, actor="admin")
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
    return env.store.drafts.create(question="Q?", paraphrases=[], answer="A.", topic="ncc-muc-chuan",
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
        "csrf_token": csrf(client), "ids": ids, "action": "reply", "topic": "", "confirmed": "1",
        "reply": "Trợ lý chỉ trả lời về lao động, người có công và xã hội. Gọi {dept_hotline} nếu cần."})
    assert r.status_code == 200 and "Đã xếp hàng gửi trả lời tới 3 công dân (4 câu hỏi)" in r.text
    with env.store.db.transaction() as s:
        out = {(o.channel, o.chat_id): o.text for o in s.scalars(select(Outbox))}
        statuses = {u.id: (u.status, u.handled_by) for u in s.scalars(select(Unanswered))}
    assert set(out) == {("web", "w1"), ("web", "w2"), ("telegram", "t1")}
    assert all("0203 999 999" in t and "Sở Thử Nghiệm" in t for t in out.values())
    assert all(statuses[int(i)] == ("answered", "canbo") for i in ids.split(","))
    assert sum(1 for st, _ in statuses.values() if st == "new") == len(statuses) - 4
    # replying again sends nothing more (already handled)
    r = client.post("/console/unanswered/reply", data={"csrf_token": csrf(client), "ids": ids, "reply": "x",
                                                       "confirmed": "1"})
    assert "đã được người khác xử lý" in r.text
    with env.store.db.transaction() as s:
        assert len(s.scalars(select(Outbox)).all()) == 3
    assert "unanswered.reply" in audit_actions(env.store)
    answered = client.get("/console/unanswered", params={"status": "answered"}).text
    assert "Đã trả lời" in answered and "Tạo bản nháp hỏi–đáp" in answered
    # each recipient's delivery: queued, then one sent and one failed for good, with the reason and a retry
    assert "Gửi tới từng công dân" in answered and answered.count("Đang chờ gửi") == 3
    with env.store.db.transaction() as s:
        rows = {o.chat_id: o for o in s.scalars(select(Outbox))}
        tg_id = rows["t1"].id
    env.store.outbox.mark_sent(rows["w1"].id)
    env.store.outbox.mark_failed(tg_id, "Forbidden: bot was blocked by the user", permanent=True)
    answered = client.get("/console/unanswered", params={"status": "answered"}).text
    assert "Đã gửi" in answered and "Gửi thất bại" in answered and "bot was blocked" in answered
    dash = client.get("/console/dashboard").text
    assert re.search(r'id="kpi-failed-deliveries">1<', dash)
    r = client.post(f"/console/outbox/{tg_id}/retry", data={"csrf_token": csrf(client)})
    assert "Đã xếp hàng gửi lại" in r.text
    assert env.store.outbox.counts().get("failed", 0) == 0


def test_reply_checks_its_text_and_dismiss(env: Env) -> None:
    _seed_unanswered(env)
    client = signed_in(env, "canbo")
    token = csrf(client)
    ids = ",".join(str(u.id) for u in env.store.requests.list_unanswered())
    assert "trống" in client.post("/console/unanswered/reply", data={"csrf_token": token, "ids": ids,
                                                                     "reply": "  "}).text
    assert "tối đa" in client.post("/console/unanswered/reply", data={"csrf_token": token, "ids": ids,
                                                                      "reply": "x" * 1300}).text
    assert "{ten_la}" in client.post("/console/unanswered/reply", data={"csrf_token": token, "ids": ids,
                                                                        "reply": "gọi {ten_la}"}).text
    r = client.post("/console/unanswered/reply", data={"csrf_token": token, "ids": ids, "action": "dismiss"})
    assert f"Đã bỏ qua {len(ids.split(','))} câu hỏi" in r.text
    assert env.store.requests.list_unanswered() == []


def test_bulk_assign_shows_the_assignee_and_filters_mine(env: Env) -> None:
    _seed_unanswered(env)
    env.store.users.add("khoa", hash_password(OFFICER_PW), "officer")
    env.store.users.add("nghi", hash_password(OFFICER_PW), "officer")
    env.store.users.set_active("nghi", False, actor="admin")
    client = signed_in(env, "canbo")
    page = client.get("/console/unanswered").text
    # the bulk bar offers the active officers only, the current one selected
    bar = page[page.index('id="bulk-assignee"'):]
    bar = bar[:bar.index("</select>")]
    assert '<option value="khoa"' in bar and '<option value="canbo" selected' in bar and "nghi" not in bar
    weather = re.search(r'name="ids" value="([0-9,]+)" id="chon-', page).group(1)  # type: ignore[union-attr]
    assert len(weather.split(",")) == 4
    token = csrf(client)
    others = [str(u.id) for u in env.store.requests.list_unanswered() if str(u.id) not in weather.split(",")]
    r = client.post("/console/unanswered/reply", data={"csrf_token": token, "ids": [weather], "action": "assign",
                                                        "assignee": "canbo"})
    assert "Đã giao 4 câu hỏi cho canbo." in r.text
    assert "Giao cho canbo</span>" in r.text
    items = {i.id: i for i in env.store.requests.queue()}
    assert {items[int(i)].assigned_to for i in weather.split(",")} == {"canbo"}
    assert {items[int(i)].assigned_to for i in others} == {None}
    # "Của tôi": only the questions assigned to the officer signed in
    mine = client.get("/console/unanswered", params={"cua_toi": "1"}).text
    assert "thời tiết" in mine.lower() and "Giá vàng" not in mine and "Trợ cấp thất nghiệp được hưởng" not in mine
    assert "vàng" in client.get("/console/unanswered").text  # the whole queue still has the others
    # a part of the group to another officer: the line says how many each has
    r = client.post("/console/unanswered/reply", data={"csrf_token": token, "ids": weather.split(",")[0],
                                                        "action": "assign", "assignee": "khoa"})
    assert "Đã giao 1 câu hỏi cho khoa." in r.text
    assert "Giao cho canbo (3/4)" in r.text and "Giao cho khoa (1/4)" in r.text
    # an unknown or locked account is refused and nothing changes
    for who in ("nghi", "ai-do"):
        r = client.post("/console/unanswered/reply", data={"csrf_token": token, "ids": others[0],
                                                            "action": "assign", "assignee": who})
        assert "không có hoặc đã bị khóa" in r.text
    assert env.store.requests.queue(ids=[int(others[0])])[0].assigned_to is None
    # un-assigning; an answered question is no longer anyone's to assign
    r = client.post("/console/unanswered/reply", data={"csrf_token": token, "ids": [weather], "action": "assign",
                                                        "assignee": ""})
    assert "Đã bỏ giao 4 câu hỏi." in r.text and 'class="badge assignee"' not in r.text
    client.post("/console/unanswered/reply", data={"csrf_token": token, "ids": others[0], "action": "dismiss"})
    r = client.post("/console/unanswered/reply", data={"csrf_token": token, "ids": others[0], "action": "assign",
                                                        "assignee": "khoa"})
    assert "Đã giao 0 câu hỏi cho khoa." in r.text and "không còn ở hàng chờ" in r.text
    with env.store.db.transaction() as s:
        rows = list(s.scalars(select(AuditLog).where(AuditLog.action == "unanswered.assign").order_by(AuditLog.id)))
        logged = [a.details for a in rows]
        assert {a.actor for a in rows} == {"canbo"}
    assert [d["assigned_to"] for d in logged if d] == ["canbo", "khoa", None, "khoa"]
    assert [d["questions"] for d in logged if d] == [4, 1, 4, 0]


# --- drafts and the knowledge base --------------------------------------------------------------------

def _reply_with_draft(env: Env, client: TestClient) -> int:
    page = client.get("/console/unanswered").text
    ids = re.search(r'name="ids" value="([0-9,]+)"', page).group(1)  # type: ignore[union-attr]
    r = client.post("/console/unanswered/reply", data={
        "csrf_token": csrf(client), "ids": ids, "action": "reply_draft", "topic": "lien-he-gio-lam-viec",
        "confirmed": "1",
        "reply": "Trợ lý không có thông tin thời tiết. Bạn xem dự báo của Trung tâm Khí tượng Thủy văn."})
    assert "bản nháp hỏi–đáp số" in r.text
    with env.store.db.transaction() as s:
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
    with env.store.db.transaction() as s:
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

    other = AssistantHolder(env.settings, embedder=HashingEmbedder(256))
    assert other.current is not None  # "another process" serving the old version

    page = admin.get("/console/knowledge").text
    assert "Chuyển sang phiên bản mới" in page
    confirm = admin.get("/console/knowledge/confirm", params={"version": new}).text
    assert f"Chuyển sang phiên bản {new}?" in confirm and "lien-he-gio-lam-viec-hoi-dap-1" in confirm
    assert re.search(r'<span class="num">1</span> mục thêm mới', confirm)
    assert re.search(r'<span class="num">0</span> mục bị bỏ', confirm)
    assert env.holder.version == old  # showing the changes switches nothing
    r = admin.post("/console/knowledge/switch", data={"csrf_token": csrf(admin), "version": new})
    assert "Trợ lý đang dùng phiên bản" in r.text
    assert env.holder.version == new and current_version(env.settings.index_root) == new
    reply = env.dialogue.handle(Incoming("web", "w9", text=WEATHER))[0]
    assert reply.kind == "answer" and reply.entry_id == "lien-he-gio-lam-viec-hoi-dap-1"
    assert other.check_reload() and other.version == new  # the other process follows the pointer
    back = admin.get("/console/knowledge/confirm", params={"rollback": "1"}).text
    assert f"Quay lại phiên bản {old}?" in back and re.search(r'<span class="num">1</span> mục bị bỏ', back)

    r = admin.post("/console/knowledge/rollback", data={"csrf_token": csrf(admin)})
    assert "Đã quay lại" in r.text
    assert env.holder.version == old and current_version(env.settings.index_root) == old
    assert env.ask(WEATHER, "w10") == "fallback"
    r = admin.post("/console/knowledge/rollback", data={"csrf_token": csrf(admin)})
    assert "Không có phiên bản trước" in r.text
    assert {"kb.rebuild_start", "kb.rebuild", "kb.switch", "kb.rollback"} <= set(audit_actions(env.store))


def test_console_switch_then_cli_build_then_servers_answer_from_the_new_version(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """One source of truth for the active version: what the console switched to, a later ``ldtbxh index
    build`` replaces, and every server process answers from the version the CLI built."""
    from handlers.cli import app as cli

    old = env.holder.version
    admin = signed_in(env, "admin")
    admin.post("/console/knowledge/rebuild", data={"csrf_token": csrf(admin)})
    assert env.console.rebuilder.wait(60).state == "done"
    second = env.console.rebuilder.status.version
    admin.post("/console/knowledge/switch", data={"csrf_token": csrf(admin), "version": second})
    assert env.holder.version == second != old
    other_server = AssistantHolder(env.settings, embedder=HashingEmbedder(256))
    assert other_server.current is not None and other_server.version == second
    assert env.ask(WEATHER, "w20") == "fallback"

    qa = env.settings.knowledge_dir / "qa" / "lien-he-gio-lam-viec.yaml"
    qa.write_text(yaml.safe_dump([{
        "id": "thoi-tiet-test", "topic": "lien-he-gio-lam-viec", "question": WEATHER,
        "answer": "Trợ lý của Sở không dự báo thời tiết.", "legal_basis": ["Quy chế của Sở"],
        "valid_from": "2026-01-01"}], allow_unicode=True), encoding="utf-8")
    for name, value in {"KNOWLEDGE_DIR": str(env.settings.knowledge_dir), "DATA_DIR": str(env.settings.data_dir),
                        "DATABASE_URL": str(env.settings.database_url),
                        "TEST_EMBEDDER": "tests.fakes:hashing_embedder"}.items():
        monkeypatch.setenv(f"LDTBXH_{name}", value)
    res = CliRunner().invoke(cli, ["index", "build"])
    assert res.exit_code == 0, res.output
    built = current_version(env.settings.index_root)
    assert built not in (old, second)
    listing = CliRunner().invoke(cli, ["index", "list"]).stdout
    assert f"* {built}" in listing and f"  {second}" in listing

    for server in (env.holder, other_server):  # each server's periodic reload check
        assert server.check_reload() and server.version == built
    reply = env.dialogue.handle(Incoming("web", "w21", text=WEATHER))[0]
    assert reply.kind == "answer" and reply.entry_id == "thoi-tiet-test"
    assert admin.get("/console/knowledge/status").json()["active"] == built

    res = CliRunner().invoke(cli, ["index", "rollback"])  # and the CLI's rollback is the console's too
    assert res.exit_code == 0 and second in res.output
    assert env.holder.check_reload() and env.holder.version == second
    assert admin.get("/console/knowledge/status").json()["active"] == second


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
    fid = env.store.followups.create("telegram", "t7", "Nguyễn Văn An", "0912345678", "Hỏi về trợ cấp")
    client = signed_in(env, "canbo")
    listing = client.get("/console/followups").text
    assert f"#{fid}" in listing and "Nguyễn Văn An" in listing
    ticket = client.get(f"/console/followups/{fid}").text
    assert "0912345678" in ticket and "Trợ cấp thất nghiệp được hưởng" in ticket  # the conversation
    token = csrf(client)
    client.post(f"/console/followups/{fid}/update", data={"csrf_token": token, "status": "in-progress",
                                                          "assigned_to": "canbo", "notes": "Đã gọi lần 1"})
    f = env.store.followups.get(fid)
    assert f is not None and (f.status, f.assigned_to, f.notes) == ("in-progress", "canbo", "Đã gọi lần 1")
    r = client.post(f"/console/followups/{fid}/reply", data={"csrf_token": token, "done": "1",
                                                             "reply": "Hồ sơ của bạn đủ điều kiện."})
    assert "Đã xếp hàng gửi phản hồi" in r.text
    with env.store.db.transaction() as s:
        out = s.scalars(select(Outbox)).one()
    assert (out.channel, out.chat_id) == ("telegram", "t7") and "Hồ sơ của bạn đủ điều kiện" in out.text
    f = env.store.followups.get(fid)
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
    # first a preview: the first rows and the errors, nothing imported yet
    assert r.status_code == 200 and "Xem trước tệp messy.csv (chưa nhập)" in r.text
    table = r.text[r.text.index('<table id="dong-dau">'):]
    table = table[:table.index("</table>")]
    assert 0 < table.count("<tr><td>") <= 10  # the first valid rows, names and phones masked
    with env.store.db.transaction() as s:
        assert s.scalars(select(DossierImport)).all() == []
    staged = re.search(r'name="token" value="([^"]+)"', r.text).group(1)  # type: ignore[union-attr]
    bad = client.get(f"/console/dossiers/staged/{staged}/loi.csv")
    assert bad.status_code == 200 and "attachment" in bad.headers["content-disposition"]
    bad_lines = bad.text.lstrip("\ufeff").splitlines()
    assert bad_lines[0].startswith("Dòng trong tệp,Lỗi") and len(bad_lines) - 1 == int(
        re.search(r'id="so-loi-truoc">(\d+)<', r.text).group(1))  # type: ignore[union-attr]
    r = client.post("/console/dossiers/confirm", data={"csrf_token": token, "token": staged, "action": "import"})
    assert r.status_code == 200 and "Kết quả nhập tệp messy.csv" in r.text
    assert "hết hạn" in client.post("/console/dossiers/confirm",
                                    data={"csrf_token": token, "token": staged, "action": "import"}).text
    inserted = int(re.search(r'id="so-them-moi">(\d+)<', r.text).group(1))  # type: ignore[union-attr]
    failed = int(re.search(r'id="so-loi">(\d+)<', r.text).group(1))  # type: ignore[union-attr]
    assert inserted > 0 and failed > 0 and "dòng " in r.text
    with env.store.db.transaction() as s:
        imp = s.scalars(select(DossierImport)).one()
        assert imp.filename == "messy.csv" and imp.actor == "canbo"
    r = client.post("/console/dossiers", data={"csrf_token": token},
                    files={"file": ("virus.exe", b"MZ", "application/octet-stream")})
    assert r.status_code == 400 and ".csv hoặc .xlsx" in r.text
    r = client.post("/console/dossiers", data={"csrf_token": token},
                    files={"file": ("rong.csv", b"", "text/csv")})
    assert r.status_code == 400 and "Không nhập được" in r.text
    assert "dossiers.import" in audit_actions(env.store)



def _upload_and_import(client: TestClient, token: str, name: str) -> str:
    path = HERE / "data" / "dossiers" / name
    r = client.post("/console/dossiers", data={"csrf_token": token}, files={"file": (name, path.read_bytes(), "text/csv")})
    staged = re.search(r'name="token" value="([^"]+)"', r.text).group(1)  # type: ignore[union-attr]
    r = client.post("/console/dossiers/confirm", data={"csrf_token": token, "token": staged, "action": "import"})
    assert r.status_code == 200 and f"Kết quả nhập tệp {name}" in r.text
    return r.text


def test_dossier_import_can_be_undone_after_a_confirmation(env: Env) -> None:
    from bot.storage.models import Dossier as DossierRow

    client = signed_in(env, "canbo")
    token = csrf(client)
    _upload_and_import(client, token, "messy.csv")
    with env.store.db.transaction() as s:
        before = {d.receipt_key: (d.status, d.note, d.updated_at) for d in s.scalars(select(DossierRow))}
    page = _upload_and_import(client, token, "newer.csv")
    with env.store.db.transaction() as s:
        last, first = [i.id for i in s.scalars(select(DossierImport).order_by(DossierImport.id.desc()))]
    # the report and the list offer the undo of this run only
    assert f'href="/console/dossiers/imports/{last}/undo">Hoàn tác lần nhập này' in page
    assert f"/console/dossiers/imports/{first}/undo" not in page
    confirm = client.get(f"/console/dossiers/imports/{last}/undo")
    assert "Hoàn tác lần nhập tệp newer.csv" in confirm.text
    assert 'id="se-xoa">1<' in confirm.text and 'id="se-khoi-phuc">1<' in confirm.text
    # without the confirmation nothing happens (back to the confirmation page)
    r = client.post(f"/console/dossiers/imports/{last}/undo", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith(f"/dossiers/imports/{last}/undo")
    with env.store.db.transaction() as s:
        assert len(s.scalars(select(DossierRow)).all()) == len(before) + 1
    # an earlier run cannot be undone
    assert "gần nhất" in client.get(f"/console/dossiers/imports/{first}/undo").text
    assert "gần nhất" in client.post(f"/console/dossiers/imports/{first}/undo",
                                     data={"csrf_token": token, "confirmed": "1"}).text
    r = client.post(f"/console/dossiers/imports/{last}/undo", data={"csrf_token": token, "confirmed": "1"})
    assert "Đã hoàn tác lần nhập: xóa 1 hồ sơ đã thêm, khôi phục 1 hồ sơ đã cập nhật về như trước." in r.text
    assert "Đã hoàn tác (canbo," in r.text and "/undo" not in r.text
    with env.store.db.transaction() as s:
        after = {d.receipt_key: (d.status, d.note, d.updated_at) for d in s.scalars(select(DossierRow))}
    assert after == before
    assert "đã được hoàn tác" in client.post(f"/console/dossiers/imports/{last}/undo",
                                            data={"csrf_token": token, "confirmed": "1"}).text
    assert "dossiers.import_undo" in audit_actions(env.store)


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
    assert lines[0].startswith("Ngày,Số câu hỏi,Trả lời")
    assert len(lines) == 8
    today = [line for line in lines[1:] if line.split(",")[1] != "0"]
    assert len(today) == 1 and today[0].split(",")[1] == "7"
    assert re.fullmatch(r"\d\d/\d\d/\d{4}", today[0].split(",")[0])
    topics = client.get("/console/dashboard.csv", params={"bang": "chu-de"}).text
    assert "tctn-huong" in topics
    groups = client.get("/console/dashboard.csv", params={"bang": "chua-tra-loi"}).text
    assert "thời tiết" in groups.lower()
    assert "dashboard.export" in audit_actions(env.store)
    custom = client.get("/console/dashboard", params={"tu": "2026-01-01", "den": "2026-01-03"}).text
    assert "01/01/2026" in custom and "03/01/2026" in custom
    assert 'id="mau-nho"' in page and "phan-hoi-mau-nho" in page  # 7 questions, 2 votes: small samples


def test_dashboard_filters_channels_and_leaves_out_test_traffic(env: Env) -> None:
    _seed_unanswered(env)  # web and telegram
    env.ask("Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?", "cli-1", channel="cli")
    client = signed_in(env, "canbo")

    def kpi(**params: str) -> int:
        page = client.get("/console/dashboard", params=params).text
        return int(re.search(r'id="kpi-questions">(\d+)<', page).group(1))  # type: ignore[union-attr]

    assert kpi() == 6 and kpi(thu_nghiem="1") == 7 and kpi(kenh="telegram") == 1 and kpi(kenh="cli") == 1
    groups = client.get("/console/dashboard.csv", params={"bang": "chua-tra-loi"}).text.lstrip("\ufeff")
    header = groups.splitlines()[0]
    assert header == "Câu hỏi đại diện,Số câu hỏi,Số công dân,Lần đầu (giờ địa phương),Lần cuối (giờ địa phương)"
    xlsx = client.get("/console/dashboard.xlsx", params={"days": "7"})
    assert xlsx.status_code == 200 and "spreadsheetml" in xlsx.headers["content-type"]
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(xlsx.content))
    assert wb.sheetnames == ["Theo ngày", "Chủ đề", "Chưa trả lời được"]
    ws = wb["Theo ngày"]
    assert [c.value for c in ws[2]][:3] == ["Ngày", "Số câu hỏi", "Trả lời"]
    assert sum(r[1] for r in ws.iter_rows(min_row=3, values_only=True)) == 6


# --- the users CLI -------------------------------------------------------------------------------------------

def test_users_cli_add_reset_list(store: Storage, migrated_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from handlers.cli import app

    monkeypatch.setenv("LDTBXH_DATABASE_URL", migrated_url)
    runner = CliRunner()
    r = runner.invoke(app, ["users", "add", "admin", "--role", "admin"],
                      input="mat-khau-dai-123\nmat-khau-dai-123\n")
    assert r.exit_code == 0, r.output
    user = store.users.get("admin")
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

    u = store.users.get("canbo")
    assert u is not None and verify_password(u.password_hash, "mat-khau-moi-99")
    r = runner.invoke(app, ["users", "list"])
    assert "admin\tadmin\tactive" in r.output and "canbo\tofficer\tactive" in r.output
    r = runner.invoke(app, ["users", "reset-password", "khong-co"])
    assert r.exit_code == 1
    with store.db.transaction() as s:
        assert s.scalars(select(User)).all()
        assert {"user.create", "user.reset_password"} <= {a.action for a in s.scalars(select(AuditLog))}


# --- mounted in the real application -----------------------------------------------------------------------

def test_console_inside_create_app(env: Env) -> None:
    settings = env.settings.model_copy(update={"serve": env.settings.serve.model_copy(update={"reload_seconds": 3600})})
    app = create_app(settings, env.dialogue, channels=[])
    with TestClient(app) as client:
        css = client.get("/console/static/console.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        assert client.get("/console/login").status_code == 200
        assert login(client, "canbo", OFFICER_PW).status_code == 303
        r = client.post("/api/chat", json={"chat_id": "wabc123456", "text": WEATHER})
        assert r.json()["replies"][0]["kind"] == "fallback"
        page = client.get("/console/unanswered").text
        ids = re.search(r'name="ids" value="([0-9,]+)"', page).group(1)  # type: ignore[union-attr]
        client.post("/console/unanswered/reply", data={"csrf_token": csrf(client), "ids": ids, "confirmed": "1",
                                                       "reply": "Xin lỗi, chưa có thông tin."})
        msgs = client.get("/api/chat/wabc123456/messages").json()["messages"]
        assert any("chưa có thông tin" in m["text"] for m in msgs)
        assert client.post("/console/knowledge/rebuild", data={"csrf_token": csrf(client)}).status_code == 403
        assert client.get("/healthz").status_code == 200


def test_valid_from_is_asked_not_defaulted_and_similar_entries_shown(env: Env) -> None:
    admin = signed_in(env, "admin")
    draft = env.store.drafts.create(question="Trợ cấp thất nghiệp được bao nhiêu tiền?", paraphrases=[],
                                    answer="A.", topic=None, author="canbo", unanswered_ids=[])
    page = admin.get(f"/console/knowledge/drafts/{draft}").text
    assert 'name="valid_from" type="date" value="" required' in page and dt.date.today().isoformat() not in page
    assert "Mục tương tự đã có" in page and "tctn-huong" in page


def test_every_reply_kind_has_a_label() -> None:
    from bot.protocol import ReplyKind
    from handlers.console.core import KIND_LABELS

    assert set(KIND_LABELS) == set(ReplyKind) and all(KIND_LABELS.values())


def test_ticket_is_a_readable_thread_with_tap_to_call(env: Env) -> None:
    env.ask("Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?", "t8", channel="telegram")
    env.press("fb:1", "t8", channel="telegram")
    fid = env.store.followups.create("telegram", "t8", "Trần Thị Bình", "0987654321", "Hỏi về trợ cấp")
    client = signed_in(env, "canbo")
    ticket = client.get(f"/console/followups/{fid}").text
    assert 'href="tel:0987654321"' in ticket and "0987 654 321" in ticket
    assert "fb:1" not in ticket and "Bấm “👍 Hữu ích”" in ticket
    assert "Trợ lý:" in ticket and "Trả lời: " in ticket  # the assistant's side, with the entry's title
    assert ticket.index("Hội thoại") < ticket.index("Trả lời công dân") < ticket.index("Cập nhật")


def test_ticket_of_a_web_chat_shows_both_sides_and_why_a_reply_waits(env: Env) -> None:
    web = "w" + "ab" * 16
    app_client = TestClient(create_app(env.settings.model_copy(update={"serve": env.settings.serve.model_copy(
        update={"reload_seconds": 3600})}), env.dialogue, channels=[]))
    with app_client as c:
        c.post("/api/chat", json={"chat_id": web, "text": "Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?"})
        c.post("/api/chat", json={"chat_id": web, "payload": "followup:start", "label": "Gặp cán bộ"})
    fid = env.store.followups.create("web", web, "Lê Văn Cường", "0912345678", "Hỏi về trợ cấp")
    client = signed_in(env, "canbo")
    client.post(f"/console/followups/{fid}/reply", data={"csrf_token": csrf(client), "reply": "Chào anh."})
    ticket = client.get(f"/console/followups/{fid}").text
    assert "Mức hưởng" in ticket or "tháng" in ticket  # the assistant's own words, from the transcript
    assert "Bấm “Gặp cán bộ”" in ticket and "followup:start" not in ticket
    assert "chờ công dân mở lại trang chat" in ticket


def test_audit_and_needs_review_lists_are_paginated(env: Env) -> None:
    for i in range(60):
        env.store.audit.log("robot", f"test.event{i}", "x", str(i), None)
    admin = signed_in(env, "admin")
    first = admin.get("/console/audit", params={"actor": "robot"}).text
    assert first.count("<code>test.event") == 50 and "test.event59" in first and "Cũ hơn" in first
    second = admin.get("/console/audit", params={"actor": "robot", "trang": "2"}).text
    assert second.count("<code>test.event") == 10 and "test.event0<" in second and "Mới hơn" in second
    from handlers.console.knowledge import PAGE_SIZE, paginate

    rows, page, pages = paginate(list(range(2 * PAGE_SIZE + 3)), 9)
    assert (page, pages, rows) == (3, 3, [2 * PAGE_SIZE, 2 * PAGE_SIZE + 1, 2 * PAGE_SIZE + 2])
    review = admin.get("/console/knowledge", params={"chu_de": "ncc-muc-chuan"}).text
    assert "Mục cần rà soát (needs_review) — 0" in review


def test_unanswered_items_link_to_their_conversation(env: Env) -> None:
    _seed_unanswered(env)
    client = signed_in(env, "canbo")
    page = client.get("/console/unanswered").text
    link = re.search(r'href="(/console/conversation\?kenh=telegram&amp;chat=[^"]+)"', page)
    assert link is not None
    convo = client.get(link.group(1).replace("&amp;", "&")).text
    assert "Hội thoại Telegram" in convo and "Hà Nội thế nào vậy" in convo and "Trợ lý:" in convo
    assert "conversation.view" in audit_actions(env.store)


def test_topic_is_pre_filled_only_when_confident_and_long_ranges_use_weeks(env: Env) -> None:
    from datetime import date

    from handlers.console.dashboard import Day, bucket
    from handlers.console.unanswered import TOPIC_PREFILL_MIN

    _seed_unanswered(env)
    client = signed_in(env, "canbo")
    page = client.get("/console/unanswered").text
    groups = {g.split("</span>")[0]: g for g in page.split('<summary><span class="q">')[1:]}
    weather = next(g for q, g in groups.items() if "thời tiết" in q)
    benefit = next(g for q, g in groups.items() if "Trợ cấp thất nghiệp" in q)
    picked = r'<select id="topic-[^"]+" name="topic">(?:(?!</select>).)*selected'
    assert TOPIC_PREFILL_MIN >= 0.8
    assert ">0.60<" in weather and not re.search(picked, weather, re.S)  # 0.60: not confident, left empty
    assert ">1.00<" in benefit and re.search(picked, benefit, re.S)  # a sure topic is pre-filled
    days = [Day(date(2026, 1, 1) + dt.timedelta(days=i), answer=1) for i in range(14)]
    weeks = bucket(days, "week")
    assert [w.day for w in weeks] == [date(2025, 12, 29), date(2026, 1, 5), date(2026, 1, 12)]
    assert [w.answer for w in weeks] == [4, 7, 3]
    from handlers.console.dashboard import trim_leading

    month = [Day(date(2026, 1, 1) + dt.timedelta(days=i)) for i in range(30)]
    month[-1].answer = 3
    assert [d.day.day for d in trim_leading(month)] == list(range(24, 31))  # the last week, not 30 empty days
    month[2].answer = 1
    assert len(trim_leading(month)) == 28
    year = client.get("/console/dashboard", params={"days": "365"}).text
    assert "Số câu hỏi mỗi tuần" in year and "Số câu hỏi mỗi ngày" not in year


def test_database_down_keeps_the_officers_typed_reply(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    _seed_unanswered(env)
    client = signed_in(env, "canbo")
    page = client.get("/console/unanswered").text
    ids = re.search(r'name="ids" value="([0-9,]+)"', page).group(1)  # type: ignore[union-attr]
    token = csrf(client)
    typed = "Câu trả lời rất dài mà cán bộ đã gõ cẩn thận: gọi {dept_hotline}."

    def down(*a: Any, **k: Any) -> Any:
        raise OperationalError("SELECT 1", {}, ConnectionError("database down"))

    # the reply itself cannot be stored: a clear error, the text back in the form, nothing queued
    monkeypatch.setattr(env.store.requests, "reply", down)
    r = client.post("/console/unanswered/reply", data={"csrf_token": token, "ids": ids, "action": "reply",
                                                       "reply": typed, "confirmed": "1"})
    assert r.status_code == 503 and "Chưa gửi được câu trả lời" in r.text and "cán bộ đã gõ cẩn thận" in r.text
    monkeypatch.undo()
    # the database is down before the page even loads the session: the text is still given back
    monkeypatch.setattr(env.store.sessions, "load", down)
    r = client.post("/console/unanswered/reply", data={"csrf_token": token, "ids": ids, "action": "reply",
                                                       "reply": typed})
    assert r.status_code == 503 and "chưa được lưu" in r.text and "cán bộ đã gõ cẩn thận" in r.text
    monkeypatch.undo()
    assert env.store.outbox.counts() == {}
