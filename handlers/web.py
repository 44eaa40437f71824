"""The web chat: a small page (``GET /``) and its JSON API, on the channel-agnostic dialogue.

API (channel ``web``; the page keeps an anonymous random chat id in localStorage):

    POST /api/chat  {"chat_id": "...", "text": "câu hỏi"}      a question
                    {"chat_id": "...", "payload": "fb:1"}       a button that was pressed
                    {"chat_id": "...", "media": "image"}        something that is not text
      -> 200 {"replies": [{"text", "kind", "buttons": [{"label", "payload"}]}]}
      -> 400 malformed JSON / fields, 413 body too large, 429 too many messages from this address;
         errors are {"error": message, "replies": [{"text": message, "kind": "error", "buttons": []}]}
    GET /api/chat/{chat_id}/messages
      -> {"messages": [{"text", "kind": "officer", "buttons"}]}: officers' messages queued in the outbox
         for this chat (marked sent once returned).
"""

from __future__ import annotations

import html
import json
import logging
import re
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import select, update

from bot.config import Settings
from bot.dialogue import Dialogue
from bot.messages import Incoming, Reply
from bot.models import Outbox, utcnow
from bot.store import Store

log = logging.getLogger(__name__)

CHANNEL = "web"
STATIC = Path(__file__).resolve().parent / "static"
STATIC_TYPES = {"chat.css": "text/css; charset=utf-8", "chat.js": "application/javascript; charset=utf-8"}
CHAT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
MAX_PAYLOAD = 64

TOO_LARGE = "Tin nhắn quá dài. Bạn vui lòng hỏi ngắn gọn hơn (mỗi lần một câu hỏi) nhé."
BAD_JSON = "Yêu cầu không hợp lệ: nội dung phải là JSON, ví dụ {\"chat_id\": \"...\", \"text\": \"câu hỏi\"}."
BAD_CHAT = "Yêu cầu không hợp lệ: thiếu hoặc sai mã cuộc trò chuyện (chat_id)."
BAD_FIELDS = "Yêu cầu không hợp lệ: cần có câu hỏi (text) hoặc mã nút bấm (payload)."
TOO_MANY = "Bạn gửi tin nhắn nhanh quá. Vui lòng đợi khoảng một phút rồi hỏi tiếp nhé."
GENERIC_ERROR = ("Xin lỗi, hệ thống đang gặp sự cố. Bạn vui lòng thử lại sau ít phút, "
                 "hoặc gọi đường dây nóng của Sở.")


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "replies": [{"text": message, "kind": "error", "buttons": []}]},
                        status_code=status)


class IpLimiter:
    """A cheap sliding-window counter per client address (per process)."""

    def __init__(self, per_minute: int, window: float = 60.0) -> None:
        self.per_minute = per_minute
        self.window = window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, now: float | None = None) -> bool:
        if self.per_minute <= 0:
            return True
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._hits) > 20000:  # forget idle addresses
                self._hits = {k: q for k, q in self._hits.items() if q and q[-1] > now - self.window}
            q = self._hits.setdefault(key, deque())
            while q and q[0] <= now - self.window:
                q.popleft()
            if len(q) >= self.per_minute:
                return False
            q.append(now)
            return True


def reply_json(r: Reply) -> dict[str, Any]:
    return {"text": r.text, "kind": r.kind, "buttons": [{"label": b.label, "payload": b.payload} for b in r.buttons]}


async def read_limited(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) anything larger than ``limit`` bytes without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise ApiError(413, TOO_LARGE)
        except ValueError:
            raise ApiError(400, BAD_JSON) from None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, TOO_LARGE)
    return bytes(body)


def parse_chat_request(body: bytes) -> Incoming:
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, BAD_JSON) from None
    if not isinstance(data, dict):
        raise ApiError(400, BAD_JSON)
    chat_id = data.get("chat_id")
    if not isinstance(chat_id, str) or not CHAT_ID_RE.match(chat_id):
        raise ApiError(400, BAD_CHAT)
    text = data.get("text")
    payload = data.get("payload")
    media = data.get("media")
    if media is not None:
        if not isinstance(media, str) or not re.match(r"^[a-z_]{1,20}$", media):
            raise ApiError(400, BAD_FIELDS)
        payload = f"media:{media}"
    if text is not None and not isinstance(text, str):
        raise ApiError(400, BAD_FIELDS)
    if payload is not None and (not isinstance(payload, str) or len(payload.encode("utf-8")) > MAX_PAYLOAD):
        raise ApiError(400, BAD_FIELDS)
    if not (text or "").strip() and not (payload or "").strip():
        raise ApiError(400, BAD_FIELDS)
    return Incoming(CHANNEL, chat_id, text=text or "", payload=payload or None)


def take_web_messages(store: Store, chat_id: str, limit: int = 20) -> list[dict[str, Any]]:
    """Officers' messages waiting for this web chat, oldest first; each is marked sent once taken."""
    out: list[dict[str, Any]] = []
    with store.session() as s:
        rows = s.execute(
            select(Outbox.id, Outbox.text, Outbox.buttons)
            .where(Outbox.channel == CHANNEL, Outbox.chat_id == chat_id, Outbox.status == "pending")
            .order_by(Outbox.id).limit(limit)
        ).all()
        now = utcnow()
        for oid, text, buttons in rows:
            res = s.execute(update(Outbox).where(Outbox.id == oid, Outbox.status == "pending")
                            .values(status="sent", sent_at=now, attempts=Outbox.attempts + 1))
            if getattr(res, "rowcount", 0) == 1:  # not taken by another process meanwhile
                out.append({"text": text, "kind": "officer",
                            "buttons": [{"label": b["label"], "payload": b["payload"]} for b in buttons or []]})
    return out


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def render_page(settings: Settings) -> str:
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    return (page.replace("{{dept_name}}", html.escape(settings.dept_name))
                .replace("{{dept_hotline}}", html.escape(settings.dept_hotline))
                .replace("{{max_chars}}", str(settings.max_message_chars)))


def web_router(settings: Settings, dialogue: Dialogue, options: Any) -> APIRouter:
    from handlers.app import run_blocking

    router = APIRouter()
    limiter = IpLimiter(options.web_rate_per_minute)
    page = render_page(settings)
    static = {name: (STATIC / name).read_bytes() for name in STATIC_TYPES}

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    @router.get("/static/{name}", include_in_schema=False)
    async def static_file(name: str) -> Response:
        if name not in static:
            return error_response(404, "Không tìm thấy tệp này.")
        return Response(static[name], media_type=STATIC_TYPES[name],
                        headers={"Cache-Control": "public, max-age=3600"})

    @router.post("/api/chat")
    async def chat(request: Request) -> JSONResponse:
        try:
            if not limiter.allow(client_ip(request)):
                raise ApiError(429, TOO_MANY)
            msg = parse_chat_request(await read_limited(request, options.web_max_body_bytes))
        except ApiError as exc:
            return error_response(exc.status, exc.message)
        try:
            replies = await run_blocking(request.app, dialogue.handle, msg)
        except Exception:
            log.exception("the dialogue failed on a web chat message")
            return error_response(500, GENERIC_ERROR)
        return JSONResponse({"replies": [reply_json(r) for r in replies]})

    @router.get("/api/chat/{chat_id}/messages")
    async def messages(chat_id: str, request: Request) -> JSONResponse:
        if not CHAT_ID_RE.match(chat_id):
            return error_response(400, BAD_CHAT)
        try:
            msgs = await run_blocking(request.app, take_web_messages, dialogue.store, chat_id)
        except Exception:
            log.exception("could not read the web outbox")
            return error_response(503, GENERIC_ERROR)
        return JSONResponse({"messages": msgs}, headers={"Cache-Control": "no-store"})

    return router
