"""The web chat: a small page (``GET /``) and its JSON API, on the channel-agnostic dialogue.

API (channel ``web``; the page keeps an anonymous random chat id in localStorage):

    POST /api/chat  {"chat_id": "...", "message_id": "<uuid>", "text": "câu hỏi"}      a question
                    {"chat_id": "...", "payload": "fb:1", "label": "👍 Hữu ích"}   a button that was pressed
                    {"chat_id": "...", "media": "image"}        something that is not text
      -> 200 {"replies": [{"text", "kind", "buttons": [{"label", "payload"}]}]}
      ``message_id`` (optional, the page always sends one): the idempotency key; the message is stored in
      the inbox before it is answered, and a retry with the same id gets the stored answer (never a
      second one). 503 (with a "Thử lại" message) when the database cannot store it. ``client_id`` is
      accepted as another name for it.
      -> 400 malformed JSON / fields, 413 body too large, 429 too many messages from this address;
         errors are {"error": message, "replies": [{"text": message, "kind": "error", "buttons": []}]}
    GET /api/chat/{chat_id}/messages
      -> {"messages": [{"id", "text", "kind": "officer", "buttons"}]}: officers' messages waiting in the
         outbox for this chat (reading them changes nothing)
    GET /api/chat/{chat_id}/history
      -> {"messages": [{"role": "user"|"bot"|"officer", "text", "kind", "buttons", "payload"}]}: the
         conversation kept on the server (chat ids of at least 22 characters, i.e. 128 random bits, as the page
         makes them; ``serve.web_history_days`` days), so a reload restores it; 429 beyond
         ``serve.web_restore_per_minute`` per address
    POST /api/chat/{chat_id}/messages/ack  {"ids": [...]}
      -> {"acknowledged": n}: the page has shown these messages; they are marked delivered
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import re
import threading
import time
import uuid
from collections import deque
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.config import ServeSettings, Settings
from bot.dialogue import Dialogue
from bot.messages import Incoming, Reply, clean_json, clean_text
from bot.protocol import APOLOGY, DOSSIER_START, FEEDBACK, FOLLOWUP_START, MEDIA
from bot.storage.engine import DatabaseError
from bot.storage.limits import Limit
from bot.storage.models import utcnow
from handlers.http import error_response, run_blocking
from handlers.templates import STATIC, TEMPLATES
from indexer.placeholders import GENERIC_DEPT_NAME, is_configured

log = logging.getLogger(__name__)

CHANNEL = "web"
CHAT_ID = r"^[A-Za-z0-9_-]{8,64}$"
CHAT_ID_RE = re.compile(CHAT_ID)
MESSAGE_ID = r"^[A-Za-z0-9-]{8,64}$"
CLIENT_ID = r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
HISTORY_ID_RE = re.compile(r"^[A-Za-z0-9_-]{22,64}$")
"""Chat ids whose conversation is kept: long enough for 128 random bits (the page: "w" + 32 hex digits)."""
MAX_PAYLOAD = 64

TOO_LARGE = "Tin nhắn quá dài. Bạn vui lòng hỏi ngắn gọn hơn (mỗi lần một câu hỏi) nhé."
BAD_JSON = "Yêu cầu không hợp lệ: nội dung phải là JSON, ví dụ {\"chat_id\": \"...\", \"text\": \"câu hỏi\"}."
BAD_CHAT = "Yêu cầu không hợp lệ: thiếu hoặc sai mã cuộc trò chuyện (chat_id)."
BAD_FIELDS = "Yêu cầu không hợp lệ: cần có câu hỏi (text) hoặc mã nút bấm (payload)."
TOO_MANY = "Bạn gửi tin nhắn nhanh quá. Vui lòng đợi khoảng một phút rồi hỏi tiếp nhé."
RETRY_LATER = ("Hệ thống đang bận nên chưa nhận được câu hỏi của bạn. Bạn vui lòng bấm \"Thử lại\" "
               "sau ít phút nhé.")
STILL_WORKING = "Câu hỏi của bạn đang được xử lý. Bạn vui lòng bấm \"Thử lại\" sau giây lát nhé."


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ChatRequest(BaseModel):
    """The body of ``POST /api/chat``."""

    model_config = ConfigDict(extra="ignore")

    chat_id: str = Field(pattern=CHAT_ID)
    message_id: str | None = Field(default=None, pattern=MESSAGE_ID)
    """The page's random id of this message (a UUID): a retry with the same id gets the same answer."""
    client_id: str | None = Field(default=None, pattern=CLIENT_ID)
    """Another name for ``message_id`` (a UUID)."""
    label: str | None = Field(default=None, max_length=120)
    """The label of the pressed button, as the transcript shows it."""
    text: str | None = None
    payload: str | None = None
    media: str | None = Field(default=None, pattern=r"^[a-z_]{1,20}$")

    @field_validator("payload")
    @classmethod
    def _short(cls, v: str | None) -> str | None:
        if v is not None and len(v.encode("utf-8")) > MAX_PAYLOAD:
            raise ValueError(f"at most {MAX_PAYLOAD} bytes")
        return v

    @model_validator(mode="after")
    def _something(self) -> ChatRequest:
        if not (self.text or "").strip() and not (self.payload or "").strip() and self.media is None:
            raise ValueError("text or payload needed")
        return self

    def incoming(self) -> Incoming:
        payload = f"{MEDIA}{self.media}" if self.media is not None else self.payload
        return Incoming(CHANNEL, self.chat_id, text=clean_text(self.text or ""),
                        payload=clean_text(payload) if payload else None)


class AckRequest(BaseModel):
    """The body of ``POST /api/chat/{chat_id}/messages/ack``."""

    ids: list[int] = Field(max_length=100)


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
    return {"text": r.text, "kind": str(r.kind),
            "buttons": [{"label": b.label, "payload": b.payload} for b in r.buttons]}


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


def parse_chat_request(body: bytes) -> ChatRequest:
    """A ``POST /api/chat`` body; :class:`ApiError` with the citizen's message if invalid."""
    try:  # Python's parser takes lone surrogates (\ud800), which clean_json then removes
        data = clean_json(json.loads(body.decode("utf-8", errors="replace")))
    except ValueError:
        raise ApiError(400, BAD_JSON) from None
    try:
        return ChatRequest.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        if any(e["type"] in ("json_invalid", "model_type") for e in errors):
            raise ApiError(400, BAD_JSON) from None
        if any(e["loc"][:1] == ("chat_id",) for e in errors):
            raise ApiError(400, BAD_CHAT) from None
        raise ApiError(400, BAD_FIELDS) from None


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def address_key(ip: str) -> str:
    """The client address as limits know it: hashed (no address is stored)."""
    return "ip:" + hashlib.sha256(("ldtbxh:" + ip).encode()).hexdigest()[:20]


def web_router(settings: Settings, dialogue: Dialogue, serve: ServeSettings) -> APIRouter:
    """The page, its static files and the chat API."""
    router = APIRouter()
    limiter = IpLimiter(serve.web_rate_per_minute)
    outbox = dialogue.store.outbox
    inbox = dialogue.store.inbox
    shared = dialogue.store.limits
    claim = timedelta(seconds=serve.inbox_claim_seconds)
    restore_limiter = IpLimiter(serve.web_restore_per_minute)
    transcripts = dialogue.store.transcripts
    keep = timedelta(days=serve.web_history_days)
    last_purge = [0.0]

    def kept(chat_id: str) -> bool:
        return serve.web_history_days > 0 and HISTORY_ID_RE.match(chat_id) is not None

    def purge_now_and_then() -> None:
        if time.monotonic() - last_purge[0] < 3600:
            return
        last_purge[0] = time.monotonic()
        try:
            n = transcripts.purge(utcnow() - keep)
            if n:
                log.info("web chat transcript: %d lines older than %d days deleted", n, serve.web_history_days)
        except Exception:
            log.exception("could not purge the web chat transcript")

    def converse(req: ChatRequest, msg: Incoming) -> list[Reply]:
        """The dialogue's replies, and the exchange kept for a reload (chats with a long random id)."""
        replies = dialogue.handle(msg)
        if kept(msg.chat_id):
            shown = f"[{req.media}]" if req.media is not None else (msg.text or req.label or msg.payload or "")
            try:
                transcripts.record(CHANNEL, msg.chat_id, shown, replies, payload=msg.payload,
                                   client_id=req.message_id or req.client_id)
            except DatabaseError:
                raise
            except Exception:
                log.exception("could not keep the web chat transcript")
            purge_now_and_then()
        return replies

    def answer(req: ChatRequest, msg: Incoming, rec_id: int, token: str) -> list[dict[str, Any]]:
        """The replies (as JSON), stored with the inbox event: one trip to the thread pool per message."""
        body = [reply_json(r) for r in converse(req, msg)]
        try:
            inbox.complete(rec_id, token, result=body)
        except Exception as exc:  # answered anyway; the stored claim lapses and a retry is answered again
            log.warning("web chat: the answer could not be stored (%s)", type(exc).__name__)
        return body

    def acknowledge_shown(chat_id: str, ids: list[int]) -> int:
        if kept(chat_id):
            for m in outbox.pending_for_chat(CHANNEL, chat_id, limit=100):
                if m.id in ids:
                    transcripts.record_officer(CHANNEL, chat_id, m.id, m.text,
                                               [{"label": b.label, "payload": b.payload} for b in m.buttons])
        return outbox.acknowledge(CHANNEL, chat_id, ids)

    dept = settings.department
    page = {"dept_name": dept.dept_name if is_configured(dept.dept_name) else GENERIC_DEPT_NAME,
            "dept_hotline": dept.dept_hotline if is_configured(dept.dept_hotline) else None,
            "max_chars": settings.max_message_chars, "feedback_prefix": FEEDBACK,
            "dossier_start": DOSSIER_START, "followup_start": FOLLOWUP_START}
    router.mount("/static", StaticFiles(directory=STATIC), name="static")

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index(request: Request) -> HTMLResponse:
        return TEMPLATES.TemplateResponse(request, "chat.html", page, headers={"Cache-Control": "no-cache"})

    @router.post("/api/chat")
    async def chat(request: Request) -> JSONResponse:
        source = address_key(client_ip(request))
        try:
            req = parse_chat_request(await read_limited(request, serve.web_max_body_bytes))
            if not await _allowed(request, req.chat_id, source):
                raise ApiError(429, TOO_MANY)
        except ApiError as exc:
            return error_response(exc.status, exc.message)
        msg = dataclasses.replace(req.incoming(), source=source)
        event_id = f"{msg.chat_id}:{req.message_id or req.client_id or 'srv-' + uuid.uuid4().hex}"
        event = {"chat_id": msg.chat_id, "text": msg.text, "payload": msg.payload, "source": source}
        try:
            rec = await run_blocking(request.app, inbox.record, CHANNEL, event_id, msg.chat_id, event,
                                     claim_for=claim)
        except Exception as exc:
            log.error("web chat: the message could not be stored (%s)", type(exc).__name__)
            return error_response(503, RETRY_LATER)
        if rec is None:  # the page retries a message already received: its answer, once
            return await _stored_answer(request, event_id)
        assert rec.claim_token is not None
        try:
            body = await run_blocking(request.app, answer, req, msg, rec.id, rec.claim_token)
        except DatabaseError as exc:  # the inbox worker answers it once the database is back
            log.error("web chat: the database failed while answering (%s)", type(exc).__name__)
            with contextlib.suppress(Exception):  # soon, if the database is already back
                await run_blocking(request.app, inbox.release, rec.id, rec.claim_token, type(exc).__name__,
                                   retry_in=timedelta(seconds=1), max_attempts=1_000_000)
            return error_response(503, RETRY_LATER)
        except Exception as exc:
            log.error("the dialogue failed on a web chat message: %s", type(exc).__name__, exc_info=exc)
            with contextlib.suppress(Exception):
                await run_blocking(request.app, inbox.complete, rec.id, rec.claim_token, state="failed")
            return error_response(500, APOLOGY)
        return JSONResponse({"replies": body})

    async def _allowed(request: Request, chat_id: str, source: str) -> bool:
        """The per-chat limit and the coarse per-address ceiling, shared by every process (database);
        this process's own count of the address when the database does not answer."""
        minute = timedelta(minutes=1)
        limits = [Limit(f"web:chat:{chat_id}", serve.web_chat_rate_per_minute, minute),
                  Limit(f"web:{source}", serve.web_rate_per_minute, minute)]
        try:
            return await run_blocking(request.app, shared.check, limits) is None
        except Exception:
            return limiter.allow(source)

    async def _stored_answer(request: Request, event_id: str) -> JSONResponse:
        deadline = time.monotonic() + serve.web_retry_wait_seconds
        while True:
            try:
                found = await run_blocking(request.app, inbox.result_of, CHANNEL, event_id)
            except Exception:
                return error_response(503, RETRY_LATER)
            if found is not None and found[0] == "done" and found[1] is not None:
                return JSONResponse({"replies": found[1], "repeated": True})
            if found is not None and found[0] == "failed":
                return error_response(500, APOLOGY)
            if time.monotonic() > deadline:
                return error_response(503, STILL_WORKING)
            await asyncio.sleep(0.2)

    @router.get("/api/chat/{chat_id}/history")
    async def history(chat_id: str, request: Request) -> JSONResponse:
        if not CHAT_ID_RE.match(chat_id):
            return error_response(400, BAD_CHAT)
        if not restore_limiter.allow(client_ip(request)):
            return error_response(429, TOO_MANY)
        if not kept(chat_id):
            return JSONResponse({"messages": []}, headers={"Cache-Control": "no-store"})
        try:
            lines = await run_blocking(request.app, lambda: transcripts.history(CHANNEL, chat_id, since=utcnow() - keep))
        except Exception:
            log.exception("could not read the web chat transcript")
            return error_response(503, APOLOGY)
        body = [{"role": x.role, "text": x.text, "kind": x.kind, "buttons": x.buttons, "payload": x.payload}
                for x in lines]
        return JSONResponse({"messages": body}, headers={"Cache-Control": "no-store"})

    @router.get("/api/chat/{chat_id}/messages")
    async def messages(chat_id: str, request: Request) -> JSONResponse:
        if not CHAT_ID_RE.match(chat_id):
            return error_response(400, BAD_CHAT)
        try:
            waiting = await run_blocking(request.app, outbox.pending_for_chat, CHANNEL, chat_id)
        except Exception:
            log.exception("could not read the web outbox")
            return error_response(503, APOLOGY)
        body = [{"id": m.id, "text": m.text, "kind": "officer",
                 "buttons": [{"label": b.label, "payload": b.payload} for b in m.buttons]} for m in waiting]
        return JSONResponse({"messages": body}, headers={"Cache-Control": "no-store"})

    @router.post("/api/chat/{chat_id}/messages/ack")
    async def acknowledge(chat_id: str, request: Request) -> JSONResponse:
        if not CHAT_ID_RE.match(chat_id):
            return error_response(400, BAD_CHAT)
        try:
            ack = AckRequest.model_validate_json(await read_limited(request, serve.web_max_body_bytes))
        except ApiError as exc:
            return error_response(exc.status, exc.message)
        except ValidationError:
            return error_response(400, BAD_JSON)
        n = await run_blocking(request.app, acknowledge_shown, chat_id, ack.ids)
        return JSONResponse({"acknowledged": n})

    return router
