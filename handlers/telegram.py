"""The Telegram channel (python-telegram-bot 22).

Two ways to receive updates, both through the durable inbox (:mod:`bot.storage.inbox`):

* **webhook** (default when served): the FastAPI app mounts :attr:`TelegramChannel.router`
  (``POST /telegram/webhook``); Telegram must send the header ``X-Telegram-Bot-Api-Secret-Token``
  (registered with ``ldtbxh telegram set-webhook``). The route checks the secret, parses the update,
  cleans its text and **stores it in the inbox** (``update_id`` as the idempotency key); only then does
  Telegram get its 200. A duplicate (same ``update_id``) gets 200 and is not answered again. When the
  database cannot store it, the answer is 503: Telegram keeps the update and retries it (for up to a
  day) without disabling the webhook, so nothing is lost (docs/reliability.md).
* **polling** (a laptop, no public URL): ``ldtbxh telegram poll``; the PTB ``Updater`` calls getUpdates and
  one handler stores each update in the inbox.

The inbox worker (:mod:`handlers.inbox`) turns each stored update into one :class:`bot.messages.Incoming`
(:meth:`TelegramChannel.incoming`: text, button press, ``/start``/``/help``, non-text message ->
``media:<kind>``), runs the dialogue, and the replies go through the outbox: sent at once, retried with
back-off when Telegram fails. Replies are split at paragraph boundaries within Telegram's 4096-character
limit, the buttons going under the last part as an inline keyboard.

From PTB: ``AIORateLimiter`` limits outgoing requests (``max_per_second`` over all chats) and retries after
Telegram's ``RetryAfter``, pausing every request meanwhile. Kept here: the redaction of the bot token from
the HTTP client's log lines (every request URL contains it).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from telegram import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    Update,
)
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationHandlerStop,
    BaseUpdateProcessor,
    ContextTypes,
    TypeHandler,
    filters,
)

from bot.config import Settings, TelegramSettings
from bot.dialogue import Dialogue
from bot.messages import Button, Incoming, clean_json, split_message
from bot.protocol import DETAILS, FEEDBACK, HELP, MEDIA
from handlers.keyed_lock import KeyedLock

log = logging.getLogger(__name__)

CHANNEL = "telegram"
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MESSAGE_LIMIT = 4096
CALLBACK_DATA_LIMIT = 64
ALLOWED_UPDATES = ["message", "callback_query"]
MAX_BODY_BYTES = 1_000_000
_COMMAND_RE = re.compile(r"^/(?:start|help)(?:@\w+)?(?:\s|$)", re.IGNORECASE)

_TOKEN_LOGGERS = ("httpx", "httpcore", "telegram", "telegram.ext")

# Which attribute of a Message names its kind, for the ``media:<kind>`` payload (first match wins).
_MEDIA_KINDS = (
    "sticker", "photo", "voice", "audio", "video_note", "video", "animation", "document", "contact",
    "location", "venue", "poll", "dice", "story",
)


def webhook_endpoint(tg: TelegramSettings, url: str | None = None) -> str:
    """The full URL to register: ``<base>/telegram/webhook`` (a URL already ending so is kept)."""
    base = (url or tg.webhook_url or "").strip()
    if not base:
        raise ValueError("no webhook URL: set LDTBXH_TELEGRAM_WEBHOOK_URL or pass --url")
    base = base.rstrip("/")
    return base if base.endswith(WEBHOOK_PATH) else base + WEBHOOK_PATH


class TokenRedactor(logging.Filter):
    """Replaces the bot token in log records (httpx logs every request URL, which contains it)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        if self.token and self.token in message:
            record.msg = message.replace(self.token, "<token>")
            record.args = None
        return True


# --- per-chat ordering ----------------------------------------------------------------------------------


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """Different chats concurrently, one chat's updates strictly in arrival order."""

    def __init__(self, max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
        self.chats = KeyedLock()

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            await coroutine
            return
        async with self.chats.hold(chat.id):
            await coroutine

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None


# --- keyboards ----------------------------------------------------------------------------------------


def _fits(payload: str) -> bool:
    return 0 < len(payload.encode("utf-8")) <= CALLBACK_DATA_LIMIT


def keyboard(buttons: Sequence[Button]) -> InlineKeyboardMarkup | None:
    """Inline keyboard for ``buttons``: short labels two to a row, long ones (choices) alone.

    A payload longer than Telegram's 64 bytes of callback data is dropped (with a warning) rather than
    making Telegram refuse the whole message.
    """
    rows: list[list[InlineKeyboardButton]] = []
    pending: list[InlineKeyboardButton] = []
    for b in buttons:
        if not _fits(b.payload):
            log.warning("telegram: button payload over %d bytes dropped: %r", CALLBACK_DATA_LIMIT, b.payload[:80])
            continue
        btn = InlineKeyboardButton(b.label[:64], callback_data=b.payload)
        if len(b.label) > 22:
            if pending:
                rows.append(pending)
                pending = []
            rows.append([btn])
            continue
        pending.append(btn)
        if len(pending) == 2:
            rows.append(pending)
            pending = []
    if pending:
        rows.append(pending)
    return InlineKeyboardMarkup(rows) if rows else None


def _remaining_keyboard(markup: InlineKeyboardMarkup | None, pressed: str) -> InlineKeyboardMarkup | None:
    """The keyboard left after pressing ``pressed``.

    Feedback (``fb:*``) removes the feedback buttons; "details" removes itself; any other press (a
    choice, a flow step) uses the keyboard up.
    """
    if markup is None:
        return None
    if pressed.startswith(FEEDBACK):
        drop: Callable[[str], bool] = lambda data: data.startswith(FEEDBACK)  # noqa: E731
    elif pressed.startswith(DETAILS):
        drop = lambda data: data == pressed  # noqa: E731
    else:
        return None
    rows = [[b for b in row if isinstance(b.callback_data, str) and not drop(b.callback_data)]
            for row in markup.inline_keyboard]
    rows = [r for r in rows if r]
    return InlineKeyboardMarkup(rows) if rows else None


def media_kind(message: Message) -> str:
    for kind in _MEDIA_KINDS:
        if getattr(message, kind, None):
            return kind
    return "other"


def _chat_target(chat_id: str | int) -> int | str:
    s = str(chat_id).strip()
    return int(s) if re.fullmatch(r"-?\d+", s) else s


# --- the channel --------------------------------------------------------------------------------------


class TelegramChannel:
    """The Telegram adapter: ``start``/``stop`` around the server's life, ``router`` for the webhook,
    ``send`` for the outbox (officer replies)."""

    name = CHANNEL

    def __init__(self, settings: TelegramSettings, dialogue: Dialogue) -> None:
        if not settings.enabled or settings.token is None:
            raise ValueError("LDTBXH_TELEGRAM_TOKEN is not set")
        self.settings = settings
        self.dialogue = dialogue
        self.inbox = dialogue.store.inbox
        self._wake: Callable[[], None] = lambda: None
        self.mode = settings.mode
        self.secret = settings.webhook_secret
        self.limiter = AIORateLimiter(overall_max_rate=settings.max_per_second, overall_time_period=1,
                                      max_retries=2)
        builder = (
            Application.builder()
            .token(settings.token.get_secret_value())
            .base_url(settings.base_url)
            .rate_limiter(self.limiter)
            .concurrent_updates(PerChatUpdateProcessor(settings.max_concurrent_updates))
        )
        if self.mode == "webhook":
            builder = builder.updater(None)
        self.application: Application[Any, Any, Any, Any, Any, Any] = builder.build()
        self._install_handlers()
        self._started = False
        self._redactor = TokenRedactor(settings.token.get_secret_value())
        self.router: APIRouter | None = self._make_router() if self.mode == "webhook" else None

    @classmethod
    def from_settings(cls, settings: Settings, dialogue: Dialogue, store: object = None) -> TelegramChannel | None:
        """The channel, or None when no bot token is configured (``store``: unused, the deliverer keeps the
        outbox)."""
        if not settings.telegram.enabled:
            return None
        return cls(settings.telegram, dialogue)

    # --- life cycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._started:
            return
        app = self.application
        for name in _TOKEN_LOGGERS:
            logging.getLogger(name).addFilter(self._redactor)
        await app.initialize()
        if self.mode == "polling":
            assert app.updater is not None
            await app.updater.start_polling(allowed_updates=ALLOWED_UPDATES, timeout=10)
        await app.start()
        self._started = True
        log.info("telegram channel started (%s) as @%s", self.mode, app.bot.username)

    async def stop(self) -> None:
        if not self._started:
            return
        app = self.application
        self._started = False
        try:
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
            if app.running:
                await app.stop()
        finally:
            await app.shutdown()
            for name in _TOKEN_LOGGERS:
                logging.getLogger(name).removeFilter(self._redactor)
        log.info("telegram channel stopped")

    @property
    def running(self) -> bool:
        return self._started

    # --- outgoing ------------------------------------------------------------------------------------
    async def send(self, chat_id: str, text: str, buttons: list[Button]) -> None:
        """Send ``text`` (split if long) with ``buttons`` under the last part; raises on failure."""
        if not self._started:
            raise RuntimeError("the Telegram channel is not started")
        await self._send(_chat_target(chat_id), text, buttons)

    async def _send(self, chat_id: int | str, text: str, buttons: Sequence[Button]) -> None:
        parts = split_message(text or "…", MESSAGE_LIMIT)
        markup = keyboard(buttons)
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            await self.application.bot.send_message(
                chat_id=chat_id, text=part, reply_markup=markup if last else None,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )

    # --- incoming ------------------------------------------------------------------------------------
    def _install_handlers(self) -> None:
        # Polling: every update is stored in the inbox (then answered by the inbox worker).
        self.application.add_handler(TypeHandler(Update, self._record_polled))
        self.application.add_error_handler(self._on_error)

    def attach(self, wake: Callable[[], None]) -> None:
        """Called by whoever runs the inbox worker: ``wake`` is called after each recorded update."""
        self._wake = wake

    async def record(self, data: dict[str, Any]) -> bool | None:
        """Store one update (already parsed and checked) in the inbox: True stored, False a duplicate.
        Raises when the database does not answer."""
        data = clean_json(data)
        update = Update.de_json(data, self.application.bot)
        chat_id = chat_of(update)
        rec = await asyncio.to_thread(self.inbox.record, CHANNEL, str(data["update_id"]), chat_id, data)
        if rec is None:
            return False
        self._wake()
        return True

    async def _record_polled(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        # getUpdates has already moved past this update: keep trying until it is stored (database down)
        delay = 1.0
        while True:
            try:
                await self.record(update.to_dict())
                break
            except Exception as exc:
                log.error("telegram: polled update %s could not be stored (%s); retrying in %.0f s",
                          update.update_id, type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)
        raise ApplicationHandlerStop

    async def incoming(self, payload: dict[str, Any]) -> Incoming | None:
        """The dialogue message of a stored update (None: nothing to answer). A button press is
        acknowledged to Telegram and its used-up buttons removed here."""
        update = Update.de_json(payload, self.application.bot)
        query = update.callback_query
        chat = update.effective_chat
        if query is not None:
            data = query.data if isinstance(query.data, str) else ""
            try:
                await query.answer()
            except TelegramError as exc:  # too old a query: the press still counts
                log.debug("telegram answerCallbackQuery failed: %s", exc)
            if chat is not None and chat.type != chat.PRIVATE:
                return None
            await self._trim_keyboard(query, data)
            chat_id = chat.id if chat is not None else query.from_user.id
            return Incoming(CHANNEL, str(chat_id), payload=data) if data else None
        msg = update.message
        if msg is None or chat is None or chat.type != chat.PRIVATE:
            return None
        if msg.text is not None:
            if _COMMAND_RE.match(msg.text):
                return Incoming(CHANNEL, str(chat.id), payload=HELP)
            return Incoming(CHANNEL, str(chat.id), text=msg.text)
        if filters.StatusUpdate.ALL.check_update(update):
            return None
        return Incoming(CHANNEL, str(chat.id), payload=MEDIA + media_kind(msg))

    async def _trim_keyboard(self, query: CallbackQuery, data: str) -> None:
        message = query.message
        if not isinstance(message, Message) or message.reply_markup is None:
            return
        try:
            await message.edit_reply_markup(reply_markup=_remaining_keyboard(message.reply_markup, data))
        except TelegramError as exc:  # e.g. "message is not modified", or the message is too old
            log.debug("telegram editMessageReplyMarkup failed: %s", exc)

    def permanent_error(self, exc: BaseException) -> bool:
        """Errors a retry cannot cure: the bot was blocked, the chat does not exist, the message is refused."""
        return isinstance(exc, Forbidden | BadRequest)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        err = context.error
        uid = update.update_id if isinstance(update, Update) else None
        # Never the message text or the user's name: only the update id and the exception.
        log.error("telegram: error while handling update %s: %s", uid, type(err).__name__)

    # --- webhook ---------------------------------------------------------------------------------------
    def _make_router(self) -> APIRouter:
        router = APIRouter()

        @router.post(WEBHOOK_PATH, include_in_schema=False)
        async def telegram_webhook(request: Request) -> JSONResponse:
            return await self.handle_webhook(request.headers.get(SECRET_HEADER), await request.body())

        return router

    async def handle_webhook(self, secret: str | None, body: bytes) -> JSONResponse:
        """Check the secret, parse the update and store it; the HTTP response for Telegram (200 only once
        the update is stored; 503 when it cannot be, so that Telegram retries)."""
        if secret is None or not hmac.compare_digest(secret.encode(), self.secret.encode()):
            return JSONResponse({"ok": False, "error": "forbidden"}, status_code=403)
        if len(body) > MAX_BODY_BYTES:
            return JSONResponse({"ok": False, "error": "too large"}, status_code=413)
        try:
            data = json.loads(body)
            if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
                raise ValueError("not an Update")
            data = clean_json(data)
            Update.de_json(data, self.application.bot)
        except Exception as exc:
            log.warning("telegram webhook: malformed update (%s)", type(exc).__name__)
            return JSONResponse({"ok": False, "error": "malformed update"}, status_code=400)
        if not self._started:
            return JSONResponse({"ok": False, "error": "not running"}, status_code=503)
        try:
            stored = await self.record(data)
        except Exception as exc:
            log.error("telegram webhook: update %s could not be stored (%s); Telegram will retry it",
                      data.get("update_id"), type(exc).__name__)
            return JSONResponse({"ok": False, "error": "storage unavailable, retry later"}, status_code=503)
        return JSONResponse({"ok": True} if stored else {"ok": True, "duplicate": True})


def chat_of(update: Update) -> str:
    """The chat an update belongs to (the key of per-chat ordering)."""
    if update.effective_chat is not None:
        return str(update.effective_chat.id)
    if update.callback_query is not None:
        return str(update.callback_query.from_user.id)
    if update.effective_user is not None:
        return str(update.effective_user.id)
    return "-"


__all__ = [
    "PerChatUpdateProcessor",
    "TelegramChannel",
    "keyboard",
    "media_kind",
    "webhook_endpoint",
]
