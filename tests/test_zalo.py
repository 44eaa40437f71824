"""The Zalo OA channel against a local fake of the Zalo API, with signed webhook requests (SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import inspect, select

from bot.config import ZaloSettings, load_settings
from bot.dialogue import Dialogue
from bot.messages import Button
from bot.storage import Storage
from bot.storage.engine import downgrade, make_engine
from bot.storage.engine import upgrade as db_upgrade
from bot.storage.models import ChannelToken, Feedback, Outbox, utcnow
from handlers.inbox import InboxWorker
from handlers.outbox import OutboxDeliverer
from handlers.server import create_app
from handlers.zalo import (
    TokenManager,
    ZaloChannel,
    ZaloSendError,
    event_to_incoming,
    signature,
    text_to_payload,
)

APP_ID = "4321987650001"
OA_SECRET = "oa-secret-test"
APP_SECRET = "app-secret-test"
USER = "8123456789012345678"


# --- a local fake of the Zalo API ----------------------------------------------------------------------

@dataclass
class FakeZalo:
    access: str = "acc-0"
    refresh: str = "ref-0"
    down: bool = False
    refresh_delay: float = 0.0
    messages: list[dict[str, Any]] = field(default_factory=list)
    refresh_calls: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    url: str = ""
    n: int = 0
    lock: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, cond: Callable[[], object], timeout: float = 15.0) -> None:
        """Block until ``cond()`` holds (checked whenever the fake records a call)."""
        with self.lock:
            if not self.lock.wait_for(cond, timeout):
                raise AssertionError(f"timed out; messages {self.messages}, refreshes {self.refresh_calls}")

    def wait_messages(self, n: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        self.wait_for(lambda: len(self.messages) >= n, timeout)
        return self.messages


def _handler(fake: FakeZalo) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _json(self, status: int, obj: dict[str, Any]) -> None:
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if fake.down:
                self._json(500, {"error": "internal"})
                return
            if self.path == "/v3.0/oa/message/cs":
                if self.headers.get("access_token") != fake.access:
                    self._json(200, {"error": -216, "message": "Access token is invalid"})
                    return
                with fake.lock:
                    fake.messages.append(json.loads(raw))
                    fake.n += 1
                    mid = f"m{fake.n}"
                    fake.lock.notify_all()
                self._json(200, {"error": 0, "message": "Success", "data": {"message_id": mid}})
            elif self.path == "/v4/oa/access_token":
                form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                time.sleep(fake.refresh_delay)
                with fake.lock:
                    ok = (self.headers.get("secret_key") == APP_SECRET and form.get("app_id") == APP_ID
                          and form.get("grant_type") == "refresh_token" and form.get("refresh_token") == fake.refresh)
                    if not ok:  # single use: an old refresh token fails
                        fake.rejected.append(form.get("refresh_token", ""))
                        self._json(200, {"error": -14014, "error_name": "Invalid refresh token",
                                         "error_description": "Refresh token is invalid"})
                        return
                    k = len(fake.refresh_calls) + 1
                    fake.refresh_calls.append(form["refresh_token"])
                    fake.access, fake.refresh = f"acc-{k}", f"ref-{k}"
                    fake.lock.notify_all()
                self._json(200, {"access_token": fake.access, "refresh_token": fake.refresh, "expires_in": "90000"})
            else:
                self._json(404, {"error": -1, "message": "not found"})

    return Handler


@pytest.fixture
def fake_zalo() -> Iterator[FakeZalo]:
    fake = FakeZalo()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


# --- the channel on a real dialogue ----------------------------------------------------------------------

def zalo_settings(fake: FakeZalo, **kw: Any) -> ZaloSettings:
    values: dict[str, Any] = dict(app_id=APP_ID, oa_secret_key=OA_SECRET, app_secret_key=APP_SECRET,
                                  refresh_token="ref-0", access_token="acc-0", api_base=fake.url,
                                  oauth_base=fake.url, refresh_check_seconds=0)
    values.update(kw)
    return ZaloSettings(**values)


@dataclass
class Harness:
    client: TestClient
    channel: ZaloChannel
    fake: FakeZalo
    store: Storage
    worker: InboxWorker | None = None

    def post(self, event: dict[str, Any] | None = None, *, raw: bytes | None = None, sig: str | None = None):
        body = raw if raw is not None else json.dumps(event, ensure_ascii=False).encode()
        if sig is None:
            assert event is not None
            sig = signature(APP_ID, body, str(event["timestamp"]), OA_SECRET)
        return self.client.post("/zalo/webhook", content=body,
                                headers={"X-ZEvent-Signature": sig, "Content-Type": "application/json"})

    def drain(self) -> None:
        """Until every stored event is answered (its replies sent or queued)."""
        worker = self.worker or self.client.app.state.inbox_worker  # type: ignore[attr-defined]
        self.client.portal.call(worker.drain)  # type: ignore[union-attr]
        self.client.portal.call(self.channel.drain)  # type: ignore[union-attr]


@pytest.fixture
def harness(dialogue: Dialogue, store: Storage, fake_zalo: FakeZalo) -> Iterator[Harness]:
    channel = ZaloChannel(zalo_settings(fake_zalo), dialogue, store)
    worker = InboxWorker(store.inbox, dialogue, {"zalo": channel}, OutboxDeliverer(store.outbox, {"zalo": channel}))
    channel.attach(worker.wake)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        await channel.start()
        task = asyncio.create_task(worker.run(0.05))
        yield
        task.cancel()
        await channel.stop()

    app = FastAPI(lifespan=lifespan)
    app.include_router(channel.router)
    with TestClient(app) as client:
        yield Harness(client, channel, fake_zalo, store, worker)


_seq = iter(range(1, 1_000_000))


def event(name: str = "user_send_text", text: str | None = None, *, ts_ms: int | None = None,
          user: str = USER, **message: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {"msg_id": f"msgid-{next(_seq)}-{time.time_ns()}", **message}
    if text is not None:
        msg["text"] = text
    return {"app_id": APP_ID, "user_id_by_app": "552177279717587730", "event_name": name,
            "timestamp": str(ts_ms if ts_ms is not None else int(time.time() * 1000)),
            "sender": {"id": user}, "recipient": {"id": "388613280878808645"}, "message": msg}


def buttons_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    att = message["message"].get("attachment")
    return att["payload"]["buttons"] if att else []


# --- tests ----------------------------------------------------------------------------------------------

def test_question_is_answered_with_buttons_then_a_button_press_gives_feedback(harness: Harness) -> None:
    r = harness.post(event(text="Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?"))
    assert r.status_code == 200 and r.json() == {"ok": True}
    sent = harness.fake.wait_messages(1)[0]
    assert sent["recipient"] == {"user_id": USER}
    assert "thất nghiệp" in sent["message"]["text"].lower()
    btns = buttons_of(sent)
    assert {b["type"] for b in btns} == {"oa.query.show"}
    payloads = [b["payload"] for b in btns]
    assert "#fb:0" in payloads and "#fb:1" in payloads
    assert any(p.startswith("#detail:") for p in payloads)

    # pressing "not helpful": Zalo sends the payload back as the user's text
    assert harness.post(event(text="#fb:0")).status_code == 200
    reply = harness.fake.wait_messages(2)[1]
    assert "chuyển để cán bộ" in reply["message"]["text"]
    with harness.store.db.transaction() as s:
        fb = s.scalars(select(Feedback)).all()
    assert [(f.helpful, f.entry_id) for f in fb] == [(False, "tctn-huong-muc")]


def test_sticker_image_and_follow(harness: Harness) -> None:
    assert harness.post(event("user_send_sticker", attachments=[{"type": "sticker"}])).status_code == 200
    assert "chỉ đọc được tin nhắn chữ" in harness.fake.wait_messages(1)[0]["message"]["text"]
    follow = {"app_id": APP_ID, "event_name": "follow", "timestamp": str(int(time.time() * 1000)),
              "oa_id": "388613280878808645", "follower": {"id": "999"}, "source": "testing"}
    assert harness.post(follow).status_code == 200
    hello = harness.fake.wait_messages(2)[1]
    assert hello["recipient"] == {"user_id": "999"} and "Tra cứu tình trạng hồ sơ" in hello["message"]["text"]
    assert "#dossier:start" in [b["payload"] for b in buttons_of(hello)]
    # the OA's own echoes and receipts are acknowledged and ignored
    echo = event("oa_send_text", text="hi")
    r = harness.post(echo)
    assert r.status_code == 200 and r.json()["ignored"] == "oa_send_text"
    harness.drain()
    assert len(harness.fake.messages) == 2


def test_bad_signature_replay_and_malformed(harness: Harness) -> None:
    ev = event(text="xin chào")
    body = json.dumps(ev).encode()
    assert harness.post(ev, sig="mac=" + "0" * 64).status_code == 401
    assert harness.post(ev, sig="").status_code == 401
    # signed with another secret, or over a body that was changed afterwards
    assert harness.post(ev, sig=signature(APP_ID, body, ev["timestamp"], "other")).status_code == 401
    tampered = body.replace(b"xin ch", b"XIN CH")
    r = harness.post(ev, raw=tampered, sig=signature(APP_ID, body, ev["timestamp"], OA_SECRET))
    assert r.status_code == 401 and r.json()["error"] == "invalid signature"

    assert harness.post(ev).status_code == 200
    again = harness.post(ev)  # the same event delivered twice
    assert again.status_code == 409 and "replayed" in again.json()["error"]
    old = event(text="xin chào", ts_ms=int((time.time() - 3600) * 1000))
    r = harness.post(old)
    assert r.status_code == 409 and "timestamp" in r.json()["error"]

    r = harness.post(raw=b"{not json", sig="mac=00")
    assert r.status_code == 400 and "malformed" in r.json()["error"]
    r = harness.post(raw=b"[1, 2]", sig="mac=00")
    assert r.status_code == 400
    no_ts = {k: v for k, v in event(text="x").items() if k != "timestamp"}
    assert harness.post(raw=json.dumps(no_ts).encode(), sig="mac=00").status_code == 400
    harness.drain()
    assert len(harness.fake.messages) == 1  # only the one good event was answered


def test_expired_access_token_is_refreshed_and_persisted(harness: Harness) -> None:
    harness.fake.access = "acc-rotated-elsewhere"  # the seeded acc-0 now gets error -216
    harness.post(event(text="xin chào"))
    sent = harness.fake.wait_messages(1)
    assert sent and harness.fake.refresh_calls == ["ref-0"]
    with harness.store.db.transaction() as s:
        row = s.get(ChannelToken, "zalo")
        assert row is not None
        assert (row.access_token, row.refresh_token) == ("acc-1", "ref-1")
        assert row.expires_at is not None and row.expires_at > utcnow() + timedelta(hours=24)
    # the old refresh token is spent: reusing it at Zalo fails; the stored one works
    harness.post(event(text="xin chào"))
    harness.fake.wait_messages(2)
    assert harness.fake.refresh_calls == ["ref-0"]  # no second refresh needed


def test_token_about_to_expire_is_refreshed_before_sending(harness: Harness) -> None:
    with harness.store.db.transaction() as s:
        row = s.get(ChannelToken, "zalo")
        assert row is not None
        row.expires_at = utcnow() + timedelta(seconds=30)
    harness.client.portal.call(harness.channel.send, USER, "chào bạn", [])  # type: ignore[union-attr]
    assert harness.fake.refresh_calls == ["ref-0"] and len(harness.fake.messages) == 1
    assert harness.channel.tokens.needs_refresh() is False


def test_two_workers_never_spend_the_refresh_token_twice(migrated_url: str, fake_zalo: FakeZalo,
                                                          dialogue: Dialogue) -> None:
    fake_zalo.refresh_delay = 0.3
    stores = [Storage(migrated_url), Storage(migrated_url)]
    managers = [TokenManager(zalo_settings(fake_zalo), s.tokens, httpx.Client(timeout=10)) for s in stores]
    managers[0].seed()
    managers[1].seed()  # already seeded: no change
    results: list[str] = []
    errors: list[BaseException] = []

    def work(m: TokenManager) -> None:
        try:
            results.append(m.refresh("acc-0"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(m,)) for m in managers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    try:
        assert not errors, errors
        assert fake_zalo.refresh_calls == ["ref-0"] and not fake_zalo.rejected
        assert results == ["acc-1", "acc-1"]
    finally:
        for m in managers:
            m.http.close()
        for s in stores:
            s.close()


def test_api_down_puts_the_reply_in_the_outbox_and_a_later_send_succeeds(harness: Harness) -> None:
    harness.fake.down = True
    assert harness.post(event(text="Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?")).status_code == 200
    harness.drain()
    # the failed send left the reply queued (waiting for its retry with back-off)
    due = harness.store.outbox.pending_for_chat("zalo", USER)
    assert len(due) == 1 and due[0].chat_id == USER and "thất nghiệp" in due[0].text.lower()
    assert Button("👎 Chưa hữu ích", "fb:0") in due[0].buttons
    call: Callable[..., Any] = harness.client.portal.call  # type: ignore[union-attr]
    with pytest.raises(ZaloSendError):  # still down: send raises so the outbox worker retries
        call(harness.channel.send, due[0].chat_id, due[0].text, due[0].buttons)
    harness.fake.down = False
    call(harness.channel.send, due[0].chat_id, due[0].text, due[0].buttons)
    harness.store.outbox.mark_sent(due[0].id)
    assert len(harness.fake.messages) == 1 and "#fb:0" in [b["payload"] for b in buttons_of(harness.fake.messages[0])]
    assert harness.store.outbox.due("zalo") == []


def test_long_reply_is_split_with_buttons_on_the_last_part(harness: Harness) -> None:
    text = "\n\n".join(f"Đoạn {i}: " + "nội dung " * 60 for i in range(10))
    call: Callable[..., Any] = harness.client.portal.call  # type: ignore[union-attr]
    call(harness.channel.send, USER, text, [Button("Gặp cán bộ", "followup:start")])
    msgs = harness.fake.messages
    assert len(msgs) >= 3 and all(len(m["message"]["text"]) <= 2000 for m in msgs)
    assert [bool(buttons_of(m)) for m in msgs] == [False] * (len(msgs) - 1) + [True]
    assert buttons_of(msgs[-1]) == [{"title": "Gặp cán bộ", "type": "oa.query.show", "payload": "#followup:start"}]


def test_partial_delivery_queues_only_the_rest(harness: Harness) -> None:
    text = "\n\n".join(f"Phần {i} " + "x " * 900 for i in range(2))
    orig = harness.channel._post_once
    calls = {"n": 0}

    def flaky(token: str, body: dict[str, Any]) -> tuple[int, str]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise ZaloSendError("boom")
        return orig(token, body)

    harness.channel._post_once = flaky  # type: ignore[method-assign]
    harness.client.portal.call(harness.channel.send, USER, text, [Button("OK", "help")])  # type: ignore[union-attr]
    assert len(harness.fake.messages) == 1 and harness.fake.messages[0]["message"]["text"].startswith("Phần 0")
    due = harness.store.outbox.due("zalo")
    assert len(due) == 1 and due[0].text.startswith("Phần 1") and due[0].buttons == [Button("OK", "help")]


def test_payload_scheme_and_event_mapping() -> None:
    assert text_to_payload("#fb:1") == "fb:1"
    assert text_to_payload(" #pick:tctn-huong-muc ") == "pick:tctn-huong-muc"
    assert text_to_payload("#help") == "help"
    assert text_to_payload("#dossier:start") == "dossier:start"
    for text in ("#media:sticker", "#trocap", "fb:1", "#fb:1 thêm chữ", "#helpme", "tôi hỏi #fb:1"):
        assert text_to_payload(text) is None, text
    inc = event_to_incoming(event("user_send_image", attachments=[{"type": "image"}]))
    assert inc is not None and inc.payload == "media:image" and inc.chat_id == USER
    inc = event_to_incoming(event("user_send_audio"))
    assert inc is not None and inc.payload == "media:audio"
    inc = event_to_incoming(event(text="#media:sticker"))
    assert inc is not None and inc.payload is None and inc.text == "#media:sticker"
    assert event_to_incoming(event("user_seen_message")) is None


def test_from_settings_is_none_when_not_configured(dialogue: Dialogue, store: Storage,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    assert ZaloChannel.from_settings(load_settings(), dialogue, store) is None
    monkeypatch.setenv("LDTBXH_ZALO_APP_ID", APP_ID)
    monkeypatch.setenv("LDTBXH_ZALO_OA_SECRET_KEY", OA_SECRET)
    monkeypatch.setenv("LDTBXH_ZALO_APP_SECRET_KEY", APP_SECRET)
    ch = ZaloChannel.from_settings(load_settings(), dialogue, store)
    assert ch is not None and ch.name == "zalo" and "oa-secret" not in repr(ch.settings)
    ch.http.close()


def test_migration_0002_upgrade_and_downgrade(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        db_upgrade(engine, "0001")
        assert "channel_tokens" not in inspect(engine).get_table_names()
        db_upgrade(engine, "0002")
        cols = {c["name"] for c in inspect(engine).get_columns("channel_tokens")}
        assert cols == {"channel", "access_token", "refresh_token", "expires_at", "updated_at"}
        downgrade(engine, "0001")
        assert "channel_tokens" not in inspect(engine).get_table_names()
        db_upgrade(engine)
        assert "channel_tokens" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_spent_refresh_token_keeps_the_reply_in_the_outbox(harness: Harness) -> None:
    harness.fake.access, harness.fake.refresh = "acc-elsewhere", "ref-elsewhere"  # another copy refreshed
    harness.post(event(text="xin chào"))
    harness.drain()
    assert harness.fake.messages == [] and harness.fake.rejected == ["ref-0"]
    due = harness.store.outbox.pending_for_chat("zalo", USER)
    assert len(due) == 1 and due[0].chat_id == USER
    with harness.store.db.transaction() as s:  # nothing was overwritten by the failed refresh
        row = s.get(ChannelToken, "zalo")
        assert row is not None and row.refresh_token == "ref-0"


def test_follow_event_replayed_is_rejected_by_its_signature(harness: Harness) -> None:
    follow = {"app_id": APP_ID, "event_name": "follow", "timestamp": str(int(time.time() * 1000)),
              "oa_id": "1", "follower": {"id": "777"}, "source": "testing"}
    assert harness.post(follow).status_code == 200
    assert harness.post(follow).status_code == 409
    harness.fake.wait_messages(1)


def test_idle_server_refreshes_a_token_about_to_expire(dialogue: Dialogue, store: Storage,
                                                       fake_zalo: FakeZalo) -> None:
    with store.db.transaction() as s:
        s.add(ChannelToken(channel="zalo", access_token="acc-0", refresh_token="ref-0",
                           expires_at=utcnow() + timedelta(seconds=60), updated_at=utcnow()))
    channel = ZaloChannel(zalo_settings(fake_zalo, refresh_check_seconds=0.05), dialogue, store)

    refreshed = threading.Event()
    current = channel.tokens.current

    def watched() -> str:  # what the background check calls; set once the new tokens are stored
        try:
            return current()
        finally:
            refreshed.set()

    channel.tokens.current = watched  # type: ignore[method-assign]

    async def run() -> None:
        await channel.start()
        assert await asyncio.to_thread(refreshed.wait, 15)
        await channel.stop()

    asyncio.run(run())
    assert fake_zalo.refresh_calls == ["ref-0"]
    with store.db.transaction() as s:
        row = s.get(ChannelToken, "zalo")
        assert row is not None and row.refresh_token == "ref-1"


def test_in_the_server_app_with_its_outbox_worker(dialogue: Dialogue, store: Storage, fake_zalo: FakeZalo) -> None:
    """The real ASGI app (handlers.server) mounts the router and its outbox worker retries through send()."""
    channel = ZaloChannel(zalo_settings(fake_zalo), dialogue, store)
    settings = dialogue.settings.model_copy(update={"serve": dialogue.settings.serve.model_copy(
        update={"outbox_poll_seconds": 0.05, "reload_seconds": 3600})})
    app = create_app(settings, dialogue, channels=[channel])
    with TestClient(app) as client:
        h = Harness(client, channel, fake_zalo, store)
        fake_zalo.down = True
        assert h.post(event(text="xin chào")).status_code == 200
        h.drain()
        assert len(store.outbox.pending_for_chat("zalo", USER)) == 1
        fake_zalo.down = False
        with store.db.transaction() as s:  # make the queued message due again now (skip the back-off)
            for row in s.scalars(select(Outbox)):
                row.next_attempt_at = utcnow() - timedelta(seconds=1)
        msgs = fake_zalo.wait_messages(1)
        assert msgs[0]["recipient"] == {"user_id": USER}
        deliverer = client.app.state.deliverer  # type: ignore[attr-defined]
        deliverer.round_done.clear()
        assert deliverer.round_done.wait(10)  # the round that sent it has recorded it
        with store.db.transaction() as s:
            assert [r.status for r in s.scalars(select(Outbox))] == ["sent"]


def test_replay_after_a_restart_is_refused_and_database_down_spools(
        harness: Harness, dialogue: Dialogue, store: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    ev = event(text="xin chào")
    assert harness.post(ev).status_code == 200
    harness.drain()
    assert len(harness.fake.messages) == 1
    # another process (or this one after a restart) knows nothing in memory: the inbox refuses the replay
    other = ZaloChannel(zalo_settings(harness.fake), dialogue, store)
    assert other._seen.has(f"msg:{ev['message']['msg_id']}") is False
    fresh = TestClient(FastAPI())
    fresh.app.include_router(other.router)  # type: ignore[attr-defined]
    body = json.dumps(ev, ensure_ascii=False).encode()
    r = fresh.post("/zalo/webhook", content=body, headers={
        "X-ZEvent-Signature": signature(APP_ID, body, str(ev["timestamp"]), OA_SECRET)})
    assert r.status_code == 409
    harness.drain()
    assert len(harness.fake.messages) == 1

    # the database is down: the event is spooled (200), replayed when it is back, answered once
    real = store.inbox.record

    def down(*a: Any, **k: Any) -> Any:
        raise ConnectionError("database down")

    monkeypatch.setattr(store.inbox, "record", down)
    ev2 = event(text="Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?")
    r = harness.post(ev2)
    assert r.status_code == 200 and r.json()["spooled"] is True
    assert harness.channel.spool.pending()
    monkeypatch.setattr(store.inbox, "record", real)
    msgs = harness.fake.wait_messages(2)  # the channel's spool loop replays it
    assert "thất nghiệp" in msgs[1]["message"]["text"].lower()
    assert not harness.channel.spool.pending()
