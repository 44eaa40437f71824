"""The Telegram channel: the real PTB ``Application`` against a local fake of the Bot API.

The fake (a stdlib HTTP server on 127.0.0.1, in a thread of the test process) answers getMe, sendMessage,
editMessageReplyMarkup, answerCallbackQuery, setWebhook, deleteWebhook and getUpdates, and records every
call. Updates reach the bot through the webhook route (mounted in a tiny FastAPI app) or by polling.
The dialogue is the real one, on the small test knowledge base with the fake embedder, on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from telegram.error import BadRequest
from telegram.ext import AIORateLimiter
from typer.testing import CliRunner

from bot.config import TelegramSettings, load_settings
from bot.dialogue import Dialogue
from bot.dossiers.importer import import_dossiers
from bot.messages import Button, Incoming, Reply, split_message
from bot.protocol import APOLOGY
from bot.storage import Storage
from bot.storage.models import Feedback
from handlers.inbox import InboxWorker
from handlers.outbox import OutboxDeliverer
from handlers.server import create_app
from handlers.telegram import SECRET_HEADER, TelegramChannel, keyboard, webhook_endpoint

TOKEN = "123456:TEST-token_abcdefghijklmnopqrstuvwxyz"
SECRET = "s3cret-webhook_token"
CHAT = 5001
DOSSIERS = Path(__file__).parent / "data" / "dossiers"

# Parameters the Bot API receives as plain strings (everything else is JSON-encoded by PTB).
_STRING_PARAMS = {"text", "callback_query_id", "url", "secret_token", "inline_message_id"}


# --- the fake Bot API ------------------------------------------------------------------------------------


class FakeBotApi:
    """A local stand-in for api.telegram.org that records every call."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.updates: list[dict[str, Any]] = []
        self.fail: dict[str, tuple[int, str]] = {}
        """method -> (error code, description): the next call of that method fails."""
        self.blocked: set[int] = set()
        """Chats that blocked the bot: sendMessage to them fails with 403."""
        self._cond = threading.Condition()
        self._next_id = 1000
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # the server
    def start(self) -> FakeBotApi:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return None

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, payload = fake.dispatch(self.path, self.headers.get("Content-Type") or "", body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client went away (polling stopped)
                    self.close_connection = True

            do_GET = do_POST

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-bot-api", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/bot"

    # requests
    def dispatch(self, path: str, content_type: str, body: bytes) -> tuple[int, dict[str, Any]]:
        prefix = f"/bot{self.token}/"
        if not path.startswith(prefix):
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        method = path[len(prefix):]
        params = self._params(content_type, body)
        with self._cond:
            self.calls.append((method, params))
            self._cond.notify_all()
            failure = self.fail.pop(method, None)
            if method == "sendMessage" and params.get("chat_id") in self.blocked:
                failure = (403, "Forbidden: bot was blocked by the user")
        if failure is not None:
            code, description = failure
            extra: dict[str, Any] = {"parameters": {"retry_after": 1}} if code == 429 else {}
            return code, {"ok": False, "error_code": code, "description": description, **extra}
        handler = getattr(self, f"api_{method}", None)
        if handler is None:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"}
        return 200, {"ok": True, "result": handler(params)}

    @staticmethod
    def _params(content_type: str, body: bytes) -> dict[str, Any]:
        if not body:
            return {}
        if content_type.startswith("application/json"):
            return dict(json.loads(body))
        out: dict[str, Any] = {}
        for key, values in parse_qs(body.decode(), keep_blank_values=True).items():
            value: Any = values[-1]
            if key not in _STRING_PARAMS:
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
            out[key] = value
        return out

    # methods
    def api_getMe(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"id": 42, "is_bot": True, "first_name": "Trợ lý Sở", "username": "ldtbxh_test_bot",
                "can_join_groups": False, "can_read_all_group_messages": False, "supports_inline_queries": False}

    def api_sendMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        with self._cond:
            self._next_id += 1
            mid = self._next_id
        msg: dict[str, Any] = {"message_id": mid, "date": int(time.time()),
                               "chat": {"id": p["chat_id"], "type": "private"},
                               "from": self.api_getMe({}), "text": p["text"]}
        if p.get("reply_markup"):
            msg["reply_markup"] = p["reply_markup"]
        return msg

    def api_editMessageReplyMarkup(self, p: dict[str, Any]) -> bool:
        return True

    def api_answerCallbackQuery(self, p: dict[str, Any]) -> bool:
        return True

    def api_setWebhook(self, p: dict[str, Any]) -> bool:
        return True

    def api_deleteWebhook(self, p: dict[str, Any]) -> bool:
        return True

    def api_getUpdates(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(p.get("offset") or 0)
        wait = min(float(p.get("timeout") or 0), 0.3)
        with self._cond:
            ready = [u for u in self.updates if u["update_id"] >= offset]
            if not ready and wait:
                self._cond.wait(wait)
                ready = [u for u in self.updates if u["update_id"] >= offset]
            return ready

    # helpers for the tests
    def queue_update(self, update: dict[str, Any]) -> None:
        with self._cond:
            self.updates.append(update)
            self._cond.notify_all()

    def of(self, method: str) -> list[dict[str, Any]]:
        with self._cond:
            return [p for m, p in self.calls if m == method]

    def sent(self, chat: int | None = None) -> list[dict[str, Any]]:
        return [p for p in self.of("sendMessage") if chat is None or p["chat_id"] == chat]

    def sent_message(self, params: dict[str, Any]) -> dict[str, Any]:
        """The Message the fake returned for one sendMessage call (for a callback query's ``message``)."""
        msg = {"message_id": 1, "date": int(time.time()), "chat": {"id": params["chat_id"], "type": "private"},
               "text": params["text"]}
        if params.get("reply_markup"):
            msg["reply_markup"] = params["reply_markup"]
        return msg


    def wait_for(self, cond: Callable[[], bool], timeout: float = 15.0) -> None:
        """Block until ``cond()`` holds (checked whenever the bot calls the API)."""
        with self._cond:
            if not self._cond.wait_for(cond, timeout):
                raise AssertionError("timed out waiting for the bot")


async def wait_until(fake: FakeBotApi, cond: Callable[[], bool], timeout: float = 15.0) -> None:
    await asyncio.to_thread(fake.wait_for, cond, timeout)


# --- updates as Telegram sends them ---------------------------------------------------------------------

_USER = {"id": CHAT, "is_bot": False, "first_name": "Công dân", "language_code": "vi"}
_uid = [0]


def _next_uid() -> int:
    _uid[0] += 1
    return _uid[0]


def _message(chat: int, **fields: Any) -> dict[str, Any]:
    uid = _next_uid()
    return {"update_id": uid, "message": {
        "message_id": uid, "date": int(time.time()), "chat": {"id": chat, "type": "private", "first_name": "Công dân"},
        "from": {**_USER, "id": chat}, **fields}}


def text_update(text: str, chat: int = CHAT) -> dict[str, Any]:
    fields: dict[str, Any] = {"text": text}
    if text.startswith("/"):
        fields["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return _message(chat, **fields)


def sticker_update(chat: int = CHAT) -> dict[str, Any]:
    return _message(chat, sticker={"file_id": "CAAC", "file_unique_id": "AgAD", "width": 512, "height": 512,
                                   "is_animated": False, "is_video": False, "type": "regular", "emoji": "👍"})


def photo_update(chat: int = CHAT) -> dict[str, Any]:
    return _message(chat, photo=[{"file_id": "P1", "file_unique_id": "U1", "width": 90, "height": 90}])


def callback_update(fake: FakeBotApi, sent: dict[str, Any], data: str, chat: int = CHAT) -> dict[str, Any]:
    uid = _next_uid()
    return {"update_id": uid, "callback_query": {
        "id": f"cq{uid}", "from": {**_USER, "id": chat}, "chat_instance": "ci-1", "data": data,
        "message": fake.sent_message(sent)}}


def buttons_of(sent: dict[str, Any]) -> list[tuple[str, str]]:
    markup = sent.get("reply_markup") or {}
    return [(b["text"], b["callback_data"]) for row in markup.get("inline_keyboard", []) for b in row]


# --- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeBotApi]:
    api = FakeBotApi().start()
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def dialogue(dialogue: Dialogue, store: Storage) -> Dialogue:
    import_dossiers(store.dossiers, DOSSIERS / "messy.csv", actor="test")
    return dialogue


def make_settings(**values: Any) -> TelegramSettings:
    return TelegramSettings(**values)


def tg_settings(fake: FakeBotApi, **kw: Any) -> TelegramSettings:
    values: dict[str, Any] = {"token": TOKEN, "secret_token": SECRET, "base_url": fake.base_url,
                              "mode": "webhook", "max_per_second": 200, **kw}
    return make_settings(**values)


class Harness:
    """The channel in webhook mode, its router in a tiny FastAPI app, an HTTP client for it; the inbox
    worker and the outbox deliverer the server would run beside it."""

    def __init__(self, channel: TelegramChannel, fake: FakeBotApi) -> None:
        self.channel = channel
        self.fake = fake
        self.deliverer = OutboxDeliverer(channel.dialogue.store.outbox, {channel.name: channel})
        self.worker = InboxWorker(channel.dialogue.store.inbox, channel.dialogue, {channel.name: channel},
                                  self.deliverer)
        channel.attach(self.worker.wake)
        app = FastAPI()
        assert channel.router is not None
        app.include_router(channel.router)
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app")

    async def post(self, update: Any, secret: str | None = SECRET, raw: bytes | None = None) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers[SECRET_HEADER] = secret
        body = raw if raw is not None else json.dumps(update).encode()
        return await self.client.post("/telegram/webhook", content=body, headers=headers)

    async def settled(self) -> None:
        """Wait until every update stored so far has been answered (its replies sent or queued)."""
        await self.worker.drain(15)

    async def say(self, update: dict[str, Any], expect: int = 1, chat: int = CHAT) -> list[dict[str, Any]]:
        """Deliver ``update`` through the webhook; the ``expect`` messages the bot sends in reply."""
        before = len(self.fake.sent(chat))
        r = await self.post(update)
        assert r.status_code == 200, r.text
        await self.settled()  # the update is handled completely: nothing more will come
        out = self.fake.sent(chat)[before:]
        assert len(out) == expect, [m["text"][:80] for m in out]
        return out


async def with_channel(fake: FakeBotApi, dialogue: Dialogue, store: Storage, body: Callable[[Harness], Any],
                       **kw: Any) -> None:
    channel = TelegramChannel(tg_settings(fake, **kw), dialogue)
    await channel.start()
    h = Harness(channel, fake)
    try:
        await body(h)
    finally:
        await h.client.aclose()
        await channel.stop()


# --- the scenario ---------------------------------------------------------------------------------------


def test_citizen_conversation_over_webhook(fake: FakeBotApi, dialogue: Dialogue, store: Storage,
                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    async def body(h: Harness) -> None:
        # /start -> help, with the lookup and officer buttons
        [m] = await h.say(text_update("/start"))
        assert "trợ lý ảo của Sở Thử Nghiệm" in m["text"]
        assert ("Tra cứu hồ sơ", "dossier:start") in buttons_of(m)

        # a direct question -> the answer, with details and feedback buttons
        [m] = await h.say(text_update("Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?"))
        assert "60% bình quân tiền lương" in m["text"]
        labels = dict(buttons_of(m))
        assert labels["Xem chi tiết"] == "detail:tctn-huong-muc"
        assert labels["👎 Chưa hữu ích"] == "fb:0"

        # a vague question -> choices; every callback_data fits Telegram's 64 bytes
        [m] = await h.say(text_update("trợ cấp hằng tháng"))
        choices = buttons_of(m)
        assert [d for _, d in choices if d.startswith("pick:")] and choices[-1][1] == "rephrase"
        for _, data in choices:
            assert len(data.encode()) <= 64
        # choices get a row each (long labels)
        assert all(len(row) == 1 for row in m["reply_markup"]["inline_keyboard"])

        # the citizen picks one -> its answer; the choice keyboard is used up
        [m2] = await h.say(callback_update(h.fake, m, "pick:ncc-muc-chuan-test"))
        assert "2.789.000" in m2["text"]
        assert h.fake.of("answerCallbackQuery")[-1]["callback_query_id"]
        edit = h.fake.of("editMessageReplyMarkup")[-1]
        assert edit["chat_id"] == CHAT and not edit.get("reply_markup")

        # "Chưa hữu ích" -> thanks and an officer button; the feedback buttons go away, stored in the DB
        [fb] = await h.say(callback_update(h.fake, m2, "fb:0"))
        assert "chuyển để cán bộ" in fb["text"]
        assert ("Gặp cán bộ", "followup:start") in buttons_of(fb)
        left = h.fake.of("editMessageReplyMarkup")[-1].get("reply_markup") or {}
        assert all(not b["callback_data"].startswith("fb:") for row in left.get("inline_keyboard", [])
                   for b in row)
        with store.db.transaction() as s:
            rows = s.scalars(select(Feedback)).all()
            assert [(f.helpful, f.entry_id) for f in rows] == [(False, "ncc-muc-chuan-test")]

        # dossier lookup: trigger, then the receipt number of an imported dossier
        [m] = await h.say(text_update("tra cứu hồ sơ"))
        assert "số biên nhận" in m["text"].lower()
        [m] = await h.say(text_update("H41.22-241105-0012"))
        assert "Giải quyết hưởng trợ cấp thất nghiệp" in m["text"]
        assert "Nguyễn V. A." in m["text"] and "Nguyễn Văn An" not in m["text"]
        assert "0912345678" not in m["text"]

        # ask for an officer: name, phone, (question), confirm by button
        [m] = await h.say(text_update("gặp cán bộ"))
        assert "họ và tên" in m["text"]
        [m] = await h.say(text_update("Trần Thị Bình"))
        assert "số điện thoại" in m["text"].lower()
        [m] = await h.say(text_update("0987 654 321"))
        if "followup:confirm" not in dict(map(reversed, buttons_of(m))):  # type: ignore[arg-type]
            [m] = await h.say(text_update("Tôi muốn hỏi về trợ cấp thất nghiệp"))
        assert ("followup:confirm" in [d for _, d in buttons_of(m)])
        [done] = await h.say(callback_update(h.fake, m, "followup:confirm"))
        assert done["text"]
        tickets = store.followups.recent()
        assert [(t.name, t.phone, t.channel) for t in tickets] == [("Trần Thị Bình", "0987654321", "telegram")]

        # a sticker and a photo -> "text only, please"
        [m] = await h.say(sticker_update())
        assert "chỉ đọc được tin nhắn chữ" in m["text"]
        [m] = await h.say(photo_update())
        assert "chỉ đọc được tin nhắn chữ" in m["text"]

        # a message in a group is ignored
        group = text_update("trợ cấp")
        group["message"]["chat"] = {"id": -100, "type": "group", "title": "Nhóm"}
        r = await h.post(group)
        assert r.status_code == 200
        await h.settled()
        assert fake.sent(-100) == []

    asyncio.run(with_channel(fake, dialogue, store, body))
    # every reply is plain text within the limit; no personal data or token in the logs
    assert all(len(p["text"]) <= 4096 for p in fake.sent())
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    for secret in ("0987654321", "0987 654 321", "Trần Thị Bình", "Nguyễn Văn An", TOKEN):
        assert secret not in logged


def test_errors_long_answers_and_outbox(fake: FakeBotApi, dialogue: Dialogue, store: Storage,
                                        monkeypatch: pytest.MonkeyPatch,
                                        caplog: pytest.LogCaptureFixture) -> None:
    real = dialogue.handle
    long_text = "\n\n".join(f"Đoạn {i}. " + "Nội dung hướng dẫn chi tiết thủ tục. " * 40 for i in range(12))
    assert len(long_text) > 2 * 4096

    def handle(msg: Incoming) -> list[Reply]:
        if msg.text == "gây lỗi":
            raise RuntimeError("dialogue exploded")
        if msg.text == "thủ tục dài":
            return [Reply(long_text, kind="answer", buttons=[Button("👍 Hữu ích", "fb:1")])]
        return real(msg)

    monkeypatch.setattr(dialogue, "handle", handle)

    async def body(h: Harness) -> None:
        # an exception inside the dialogue -> logged, and a polite apology to the citizen
        [m] = await h.say(text_update("gây lỗi"))
        assert m["text"] == APOLOGY
        assert any("RuntimeError" in (r.getMessage() + (r.exc_text or "")) for r in caplog.records
                   if r.levelno >= logging.ERROR)
        # ... and the bot keeps working
        [m] = await h.say(text_update("xin chào"))
        assert m["text"] != APOLOGY

        # a long answer -> several messages at paragraph boundaries, buttons only under the last
        n = len(split_message(long_text, 4096))
        assert n >= 3
        parts = await h.say(text_update("thủ tục dài"), expect=n)
        assert all(len(p["text"]) <= 4096 for p in parts)
        assert all(p["text"].startswith("Đoạn") for p in parts)
        assert [bool(p.get("reply_markup")) for p in parts] == [False] * (n - 1) + [True]
        assert " ".join(" ".join(p["text"] for p in parts).split()) == " ".join(long_text.split())

        # the outbox's send(): an officer's reply with a button
        await h.channel.send(str(CHAT), "Cán bộ trả lời: hồ sơ của anh/chị đã được duyệt.",
                             [Button("Gặp cán bộ", "followup:start")])
        last = fake.sent(CHAT)[-1]
        assert last["text"].startswith("Cán bộ trả lời") and buttons_of(last) == [("Gặp cán bộ", "followup:start")]
        # a failure is raised (so the outbox retries)
        fake.fail["sendMessage"] = (400, "Bad Request: chat not found")
        with pytest.raises(BadRequest):
            await h.channel.send("777", "xin chào", [])

    caplog.set_level(logging.INFO)
    asyncio.run(with_channel(fake, dialogue, store, body))


def test_webhook_rejects_bad_secret_and_malformed_bodies(fake: FakeBotApi, dialogue: Dialogue,
                                                         store: Storage) -> None:
    async def body(h: Harness) -> None:
        update = text_update("xin chào")
        assert (await h.post(update, secret="wrong")).status_code == 403
        assert (await h.post(update, secret=None)).status_code == 403
        assert (await h.post(None, raw=b"{not json")).status_code == 400
        assert (await h.post(None, raw=b"[1, 2]")).status_code == 400
        assert (await h.post({"hello": "world"})).status_code == 400
        assert (await h.post({"update_id": 5, "message": {"text": "no chat"}})).status_code == 400
        await h.settled()  # refused bodies are never queued
        assert fake.sent() == []
        # the good one still goes through
        [m] = await h.say(update)
        assert m["text"]

    asyncio.run(with_channel(fake, dialogue, store, body))


def test_polling_mode(fake: FakeBotApi, dialogue: Dialogue, store: Storage) -> None:
    channel = TelegramChannel(tg_settings(fake, mode="polling"), dialogue)
    assert channel.router is None

    async def run() -> None:
        worker = InboxWorker(store.inbox, dialogue, {channel.name: channel},
                             OutboxDeliverer(store.outbox, {channel.name: channel}))
        channel.attach(worker.wake)
        await channel.start()
        task = asyncio.create_task(worker.run(0.05))
        try:
            fake.queue_update(text_update("/help", chat=6001))
            fake.queue_update(text_update("Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?", chat=6001))
            await wait_until(fake, lambda: len(fake.sent(6001)) >= 2)
        finally:
            task.cancel()
            await channel.stop()

    asyncio.run(run())
    first, second = fake.sent(6001)[:2]
    assert "Tra cứu tình trạng hồ sơ" in first["text"]  # in order: help first
    assert "60% bình quân tiền lương" in second["text"]
    assert fake.of("deleteWebhook")  # polling removes a registered webhook first
    assert fake.of("getUpdates")


def test_poll_loop_answers_and_drains_the_outbox(fake: FakeBotApi, dialogue: Dialogue, store: Storage) -> None:
    """``run_polling`` (behind ``ldtbxh telegram poll``): answers updates, delivers officers' replies."""
    from handlers.cli_telegram import run_polling

    channel = TelegramChannel(tg_settings(fake, mode="polling"), dialogue)
    store.outbox.enqueue("telegram", "6002", "Cán bộ đã gọi lại cho anh/chị.",
                         [Button("Gặp cán bộ", "followup:start")])
    store.outbox.enqueue("telegram", "6003", "Tin này không đến được.")
    store.outbox.enqueue("zalo", "z1", "Không phải của Telegram.")
    fake.blocked.add(6003)

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(run_polling(channel, store.outbox, stop, outbox_every=0.05))
        fake.queue_update(sticker_update(chat=6004))
        await wait_until(fake, lambda: len(fake.sent(6002)) == 1 and len(fake.sent(6004)) == 1)
        stop.set()
        await asyncio.wait_for(task, 10)
        assert not channel.running

    asyncio.run(run())
    assert buttons_of(fake.sent(6002)[0]) == [("Gặp cán bộ", "followup:start")]
    assert "chỉ đọc được tin nhắn chữ" in fake.sent(6004)[0]["text"]
    assert len(fake.sent(6003)) == 1  # refused once; it waits for its retry with back-off
    assert store.outbox.due("telegram") == []
    assert [m.chat_id for m in store.outbox.due("zalo")] == ["z1"]


# --- pieces ---------------------------------------------------------------------------------------------


def test_settings_and_from_settings(monkeypatch: pytest.MonkeyPatch, dialogue: Dialogue) -> None:
    assert not load_settings().telegram.enabled
    assert TelegramChannel.from_settings(load_settings(), dialogue) is None
    assert not make_settings(token="  ").enabled

    monkeypatch.setenv("LDTBXH_TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("LDTBXH_TELEGRAM_WEBHOOK_URL", "https://trolyao.example.gov.vn/")
    tg = load_settings().telegram
    assert tg.enabled and tg.mode == "webhook" and tg.base_url == "https://api.telegram.org/bot"
    assert webhook_endpoint(tg) == "https://trolyao.example.gov.vn/telegram/webhook"
    assert webhook_endpoint(tg, "https://x.vn/telegram/webhook") == "https://x.vn/telegram/webhook"
    # without a configured secret, one is derived from the token (stable, valid for Telegram)
    assert tg.webhook_secret == load_settings().telegram.webhook_secret and len(tg.webhook_secret) == 64
    assert make_settings(secret_token=SECRET).webhook_secret == SECRET
    with pytest.raises(ValueError):
        make_settings(secret_token="có dấu!")
    with pytest.raises(ValueError):
        make_settings(mode="carrier-pigeon")
    assert TOKEN not in repr(tg)
    channel = TelegramChannel.from_settings(load_settings(), dialogue)
    assert channel is not None and channel.router is not None


def test_keyboard_layout_and_oversized_payloads(caplog: pytest.LogCaptureFixture) -> None:
    kb = keyboard([Button("Xem chi tiết", "detail:x"), Button("👍 Hữu ích", "fb:1"), Button("👎 Chưa hữu ích", "fb:0"),
                   Button("Một lựa chọn có nhãn rất dài về trợ cấp thất nghiệp", "pick:a"),
                   Button("Quá dài", "pick:" + "x" * 70)])
    assert kb is not None
    rows = [[b.callback_data for b in row] for row in kb.inline_keyboard]
    assert rows == [["detail:x", "fb:1"], ["fb:0"], ["pick:a"]]
    assert "dropped" in caplog.text
    assert keyboard([]) is None


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # PTB reading retry_after warns
def test_outgoing_requests_use_ptbs_rate_limiter(fake: FakeBotApi, dialogue: Dialogue) -> None:
    """PTB's AIORateLimiter at the configured rate; a RetryAfter from Telegram is waited out and retried."""
    channel = TelegramChannel(tg_settings(fake, max_per_second=7), dialogue)
    limiter = channel.application.bot.rate_limiter
    assert isinstance(limiter, AIORateLimiter) and limiter is channel.limiter
    assert limiter._base_limiter is not None and limiter._base_limiter.max_rate == 7

    async def run() -> None:
        await channel.start()
        try:
            fake.fail["sendMessage"] = (429, "Too Many Requests: retry after 1")
            await channel.send(str(CHAT), "Cán bộ trả lời.", [])
        finally:
            await channel.stop()

    asyncio.run(run())
    assert [p["text"] for p in fake.of("sendMessage")] == ["Cán bộ trả lời.", "Cán bộ trả lời."]


def test_cli_set_webhook(fake: FakeBotApi, monkeypatch: pytest.MonkeyPatch) -> None:
    from handlers.cli import app

    monkeypatch.chdir(Path(__file__).parent)
    runner = CliRunner()
    env = {"LDTBXH_TELEGRAM_TOKEN": TOKEN, "LDTBXH_TELEGRAM_BASE_URL": fake.base_url,
           "LDTBXH_TELEGRAM_SECRET_TOKEN": SECRET}
    r = runner.invoke(app, ["telegram", "set-webhook", "--url", "https://trolyao.example.gov.vn"], env=env)
    assert r.exit_code == 0, r.output
    [call] = fake.of("setWebhook")
    assert call["url"] == "https://trolyao.example.gov.vn/telegram/webhook"
    assert call["secret_token"] == SECRET
    assert call["allowed_updates"] == ["message", "callback_query"]

    r = runner.invoke(app, ["telegram", "delete-webhook"], env=env)
    assert r.exit_code == 0 and fake.of("deleteWebhook")

    monkeypatch.delenv("LDTBXH_TELEGRAM_WEBHOOK_URL", raising=False)
    r = runner.invoke(app, ["telegram", "set-webhook"], env=env)
    assert r.exit_code == 2  # no URL
    r = runner.invoke(app, ["telegram", "set-webhook", "--url", "https://x.vn"], env={**env, "LDTBXH_TELEGRAM_TOKEN": ""})
    assert r.exit_code == 2  # no token
    r = runner.invoke(app, ["telegram", "poll"], env={**env, "LDTBXH_TELEGRAM_TOKEN": ""})
    assert r.exit_code == 2 and "LDTBXH_TELEGRAM_TOKEN" in r.output


def test_in_the_server_app(fake: FakeBotApi, dialogue: Dialogue, store: Storage,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The real ASGI app finds the channel from the environment, mounts the webhook, starts and stops it,
    and its outbox worker delivers an officer's reply through ``send``."""
    from starlette.testclient import TestClient

    from bot.storage.models import Outbox

    settings = dialogue.settings.model_copy(update={
        "telegram": tg_settings(fake),
        "serve": dialogue.settings.serve.model_copy(update={"outbox_poll_seconds": 0.05, "reload_seconds": 3600})})
    app = create_app(settings, dialogue)
    wait = fake.wait_for

    with TestClient(app) as client:
        assert fake.of("getMe")  # started by the app's lifespan
        r = client.post("/telegram/webhook", json=text_update("/start", chat=7001), headers={SECRET_HEADER: SECRET})
        assert r.status_code == 200
        wait(lambda: len(fake.sent(7001)) == 1)
        assert "Tra cứu tình trạng hồ sơ" in fake.sent(7001)[0]["text"]
        assert client.post("/telegram/webhook", json=text_update("/start", chat=7001),
                           headers={SECRET_HEADER: "nope"}).status_code == 403

        store.outbox.enqueue("telegram", "7001", "Cán bộ trả lời: đã nhận hồ sơ của anh/chị.",
                             [Button("Gặp cán bộ", "followup:start")])
        wait(lambda: len(fake.sent(7001)) == 2)
        assert fake.sent(7001)[1]["text"].startswith("Cán bộ trả lời")

        # every reply goes through the outbox: the answer to /start, then the officer's message, both
        # recorded as sent (by the outbox round or by the chat's immediate delivery, whichever took it)
        def statuses() -> list[str]:
            with store.db.transaction() as s:
                return [o.status for o in s.scalars(select(Outbox).order_by(Outbox.id))]

        deadline = time.monotonic() + 15
        while statuses() != ["sent", "sent"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert statuses() == ["sent", "sent"]


def test_duplicate_update_is_answered_once_and_database_down_gets_503(
        fake: FakeBotApi, dialogue: Dialogue, store: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    """Telegram re-sends an update it got no 200 for: the same update_id is stored and answered once; when
    the database cannot store it the webhook answers 503 (Telegram retries) instead of a hollow 200."""

    async def body(h: Harness) -> None:
        update = text_update("xin chào", chat=8101)
        assert (await h.post(update)).status_code == 200
        again = await h.post(update)
        assert again.status_code == 200 and again.json()["duplicate"] is True
        await h.settled()
        assert len(fake.sent(8101)) == 1

        real = store.inbox.record

        def down(*a: Any, **k: Any) -> Any:
            raise ConnectionError("database down")

        monkeypatch.setattr(store.inbox, "record", down)
        later = text_update("Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?", chat=8101)
        r = await h.post(later)
        assert r.status_code == 503
        monkeypatch.setattr(store.inbox, "record", real)
        assert (await h.post(later)).status_code == 200  # Telegram's retry
        await h.settled()
        assert len(fake.sent(8101)) == 2 and "60% bình quân" in fake.sent(8101)[1]["text"]

    asyncio.run(with_channel(fake, dialogue, store, body))


def test_nul_and_lone_surrogates_are_cleaned_before_anything_is_stored(
        fake: FakeBotApi, dialogue: Dialogue, store: Storage, caplog: pytest.LogCaptureFixture) -> None:
    from bot.storage.models import RequestLog

    caplog.set_level(logging.INFO)
    raw = (b'{"update_id": 990001, "message": {"message_id": 1, "date": 1700000000, '
           b'"chat": {"id": 8201, "type": "private"}, "from": {"id": 8201, "is_bot": false, "first_name": "A"}, '
           b'"text": "Tr\\u1ee3 c\\u1ea5p th\\u1ea5t nghi\\u1ec7p\\u0000 \\ud800 bao nhi\\u00eau?"}}')

    async def body(h: Harness) -> None:
        r = await h.post(None, raw=raw)
        assert r.status_code == 200
        await h.settled()
        assert len(fake.sent(8201)) == 1 and fake.sent(8201)[0]["text"] != APOLOGY

    asyncio.run(with_channel(fake, dialogue, store, body))
    with store.db.transaction() as s:
        [q] = [r.question for r in s.scalars(select(RequestLog))]
    assert q == "Trợ cấp thất nghiệp  bao nhiêu?"
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "Trợ cấp thất nghiệp" not in logged and "bao nhiêu?" not in logged  # the question is never logged
