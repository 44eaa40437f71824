"""The Telegram channel (python-telegram-bot 22).

Two ways to receive updates:

* **webhook** (default when served): the FastAPI app mounts :attr:`TelegramChannel.router`
  (``POST /telegram/webhook``); Telegram must send the header ``X-Telegram-Bot-Api-Secret-Token``
  (registered with ``ldtbxh telegram set-webhook``). The PTB ``Application`` is built with
  ``updater(None)``: the route only checks the secret, parses the update and queues it, so Telegram gets
  its 200 at once.
* **polling** (a laptop, no public URL): ``ldtbxh telegram poll``; the PTB ``Updater`` calls getUpdates.

Every text message, button press (callback query), ``/start``/``/help`` and non-text message (sticker,
photo, voice... -> payload ``media:<kind>``) becomes one :class:`bot.messages.Incoming` for the blocking
:meth:`bot.dialogue.Dialogue.handle`, which runs in a worker thread (``asyncio.to_thread``). Replies are
split at paragraph boundaries within Telegram's 4096-character limit, the buttons going under the last part
as an inline keyboard. Updates of one chat are handled in order, different chats concurrently. Outgoing
requests go through a token-bucket rate limiter that also honours Telegram's ``RetryAfter``. Errors are
logged (without message text) and the citizen gets a polite apology.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
import warnings
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from telegram import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    Update,
)
from telegram.error import RetryAfter, TelegramError
from telegram.ext import (
    Application,
    BaseRateLimiter,
    BaseUpdateProcessor,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.warnings import PTBDeprecationWarning

from bot.dialogue import HELP, MEDIA, Dialogue, split_message
from bot.messages import Button, Incoming, Reply
from bot.store import Store

log = logging.getLogger(__name__)

CHANNEL = "telegram"
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MESSAGE_LIMIT = 4096
CALLBACK_DATA_LIMIT = 64
ALLOWED_UPDATES = ["message", "callback_query"]
MAX_BODY_BYTES = 1_000_000

APOLOGY = (
    "Xin lỗi, hệ thống đang gặp sự cố nên chưa trả lời được tin nhắn của bạn. "
    "Bạn vui lòng thử lại sau ít phút nhé."
)

_TOKEN_LOGGERS = ("httpx", "httpcore", "telegram", "telegram.ext")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")

# Which attribute of a Message names its kind, for the ``media:<kind>`` payload (first match wins).
_MEDIA_KINDS = (
    "sticker", "photo", "voice", "audio", "video_note", "video", "animation", "document", "contact",
    "location", "venue", "poll", "dice", "story",
)


class TelegramSettings(BaseSettings):
    """``LDTBXH_TELEGRAM_*`` variables (or the same names in ``.env``)."""

    model_config = SettingsConfigDict(env_prefix="LDTBXH_TELEGRAM_", env_file=".env", extra="ignore")

    token: SecretStr | None = None
    """The bot token from @BotFather; the channel is off without it."""
    mode: Literal["polling", "webhook"] = "webhook"
    """``webhook`` when served behind the web app; ``polling`` for a laptop (``ldtbxh telegram poll``)."""
    webhook_url: str | None = None
    """Public base URL of the web app (https://...); ``set-webhook`` registers <webhook_url>/telegram/webhook."""
    secret_token: SecretStr | None = None
    """Checked against the X-Telegram-Bot-Api-Secret-Token header; default: derived from the bot token."""
    base_url: str = "https://api.telegram.org/bot"
    """Bot API base URL (the token is appended); tests point it at a local fake."""
    max_per_second: float = Field(default=25.0, gt=0, le=1000)
    """Outgoing requests per second over all chats (Telegram allows about 30)."""
    max_concurrent_updates: int = Field(default=8, ge=1, le=256)
    """Updates handled at once (different chats; one chat's updates are always handled in order)."""

    @field_validator("token", "secret_token", mode="before")
    @classmethod
    def _blank_is_none(cls, v: Any) -> Any:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("secret_token")
    @classmethod
    def _secret_chars(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not _SECRET_RE.match(v.get_secret_value()):
            raise ValueError("must be 1-256 characters A-Z, a-z, 0-9, _ or -")
        return v

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        if not re.match(r"^https?://", v.strip()):
            raise ValueError("must be an http(s) URL, e.g. https://trolyao.example.gov.vn")
        return v.strip()

    @property
    def enabled(self) -> bool:
        return self.token is not None and bool(self.token.get_secret_value().strip())

    @property
    def webhook_secret(self) -> str:
        """The configured secret token, or one derived from the bot token (stable across restarts)."""
        if self.secret_token is not None:
            return self.secret_token.get_secret_value()
        if self.token is None:
            raise ValueError("no bot token configured")
        digest = hmac.new(self.token.get_secret_value().encode(), b"ldtbxh-telegram-webhook", hashlib.sha256)
        return digest.hexdigest()

    def webhook_endpoint(self, url: str | None = None) -> str:
        """The full URL to register: ``<base>/telegram/webhook`` (a URL already ending so is kept)."""
        base = (url or self.webhook_url or "").strip()
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


# --- outgoing rate limiting ----------------------------------------------------------------------------


class OutgoingRateLimiter(BaseRateLimiter[None]):
    """A token bucket over all outgoing requests, plus retries after Telegram's ``RetryAfter``.

    ``max_per_second`` requests per second on average, bursts of up to that many. (PTB never passes
    getUpdates through a rate limiter.)
    """

    def __init__(self, max_per_second: float, *, max_retries: int = 2,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = float(max_per_second)
        self.capacity = max(1.0, self.rate)
        self.max_retries = max_retries
        self._clock = clock
        self._tokens = self.capacity
        self._updated = clock()
        self._lock: asyncio.Lock | None = None
        self._paused_until = 0.0

    async def initialize(self) -> None:
        self._lock = asyncio.Lock()

    async def shutdown(self) -> None:
        self._lock = None

    async def _acquire(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            while True:
                now = self._clock()
                if now < self._paused_until:
                    await asyncio.sleep(self._paused_until - now)
                    continue
                self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        attempt = 0
        while True:
            await self._acquire()
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                if attempt >= self.max_retries:
                    raise
                attempt += 1
                with warnings.catch_warnings():  # int vs timedelta: PTB is changing the type
                    warnings.simplefilter("ignore", PTBDeprecationWarning)
                    delay = exc.retry_after
                seconds = delay.total_seconds() if hasattr(delay, "total_seconds") else float(delay)
                log.warning("telegram %s: flood control, retrying in %.1f s", endpoint, seconds)
                self._paused_until = max(self._paused_until, self._clock() + seconds)


# --- per-chat ordering ----------------------------------------------------------------------------------


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """Different chats concurrently, one chat's updates strictly in arrival order."""

    def __init__(self, max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: dict[int, int] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            await coroutine
            return
        key = chat.id
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                await coroutine
        finally:
            self._users[key] -= 1
            if self._users[key] <= 0:
                del self._users[key]
                self._locks.pop(key, None)

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        self._locks.clear()
        self._users.clear()


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
    if pressed.startswith("fb:"):
        drop: Callable[[str], bool] = lambda data: data.startswith("fb:")  # noqa: E731
    elif pressed.startswith("detail:"):
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

    def __init__(self, settings: TelegramSettings, dialogue: Dialogue, store: Store | None = None) -> None:
        if not settings.enabled or settings.token is None:
            raise ValueError("LDTBXH_TELEGRAM_TOKEN is not set")
        self.settings = settings
        self.dialogue = dialogue
        self.store = store
        self.mode = settings.mode
        self.secret = settings.webhook_secret
        self.limiter = OutgoingRateLimiter(settings.max_per_second)
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
    def from_settings(cls, settings: Any = None, dialogue: Dialogue | None = None,
                      store: Store | None = None) -> TelegramChannel | None:
        """The channel, or None when no bot token is configured.

        ``settings``: a :class:`TelegramSettings`, or anything else (e.g. the app's ``bot.config.Settings``),
        in which case the ``LDTBXH_TELEGRAM_*`` environment is read.
        """
        tg = settings if isinstance(settings, TelegramSettings) else TelegramSettings()
        if not tg.enabled:
            return None
        if dialogue is None:
            raise ValueError("a Dialogue is needed for the Telegram channel")
        return cls(tg, dialogue, store)

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

    async def _deliver(self, chat_id: int | str, replies: Sequence[Reply]) -> None:
        for reply in replies:
            await self._send(chat_id, reply.text, reply.buttons)

    # --- incoming ------------------------------------------------------------------------------------
    def _install_handlers(self) -> None:
        app = self.application
        private = filters.ChatType.PRIVATE
        new = filters.UpdateType.MESSAGE
        app.add_handler(CommandHandler(["start", "help"], self._on_help, filters=private & new))
        app.add_handler(MessageHandler(private & new & filters.TEXT, self._on_text))
        app.add_handler(MessageHandler(private & new & ~filters.TEXT & ~filters.StatusUpdate.ALL, self._on_media))
        app.add_handler(CallbackQueryHandler(self._on_callback))
        app.add_error_handler(self._on_error)

    async def _dispatch(self, chat_id: int, text: str = "", payload: str | None = None) -> None:
        incoming = Incoming(CHANNEL, str(chat_id), text=text, payload=payload)
        replies = await asyncio.to_thread(self.dialogue.handle, incoming)
        await self._deliver(chat_id, replies)

    async def _on_help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.effective_chat is not None:
            await self._dispatch(update.effective_chat.id, payload=HELP)

    async def _on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        msg = update.effective_message
        if msg is not None and update.effective_chat is not None:
            await self._dispatch(update.effective_chat.id, text=msg.text or "")

    async def _on_media(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        msg = update.effective_message
        if msg is not None and update.effective_chat is not None:
            await self._dispatch(update.effective_chat.id, payload=MEDIA + media_kind(msg))

    async def _on_callback(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        data = query.data if isinstance(query.data, str) else ""
        try:
            await query.answer()
        except TelegramError as exc:  # too old a query: the press still counts
            log.debug("telegram answerCallbackQuery failed: %s", exc)
        chat = update.effective_chat
        chat_id = chat.id if chat is not None else query.from_user.id
        if chat is not None and chat.type != chat.PRIVATE:
            return
        await self._trim_keyboard(query, data)
        if data:
            await self._dispatch(chat_id, payload=data)

    async def _trim_keyboard(self, query: CallbackQuery, data: str) -> None:
        message = query.message
        if not isinstance(message, Message) or message.reply_markup is None:
            return
        try:
            await message.edit_reply_markup(reply_markup=_remaining_keyboard(message.reply_markup, data))
        except TelegramError as exc:  # e.g. "message is not modified", or the message is too old
            log.debug("telegram editMessageReplyMarkup failed: %s", exc)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        err = context.error
        uid = update.update_id if isinstance(update, Update) else None
        # Never the message text or the user's name: only the update id and the exception.
        log.error("telegram: error while handling update %s: %s", uid, type(err).__name__,
                  exc_info=(type(err), err, err.__traceback__) if err is not None else None)
        if not isinstance(update, Update) or update.effective_chat is None:
            return
        if update.effective_chat.type != update.effective_chat.PRIVATE:
            return
        try:
            await self.application.bot.send_message(chat_id=update.effective_chat.id, text=APOLOGY)
        except Exception as exc:  # the network may be what failed: nothing more to do
            log.warning("telegram: could not send the apology: %s", type(exc).__name__)

    # --- webhook ---------------------------------------------------------------------------------------
    def _make_router(self) -> APIRouter:
        router = APIRouter()

        @router.post(WEBHOOK_PATH, include_in_schema=False)
        async def telegram_webhook(request: Request) -> JSONResponse:
            return await self.handle_webhook(request.headers.get(SECRET_HEADER), await request.body())

        return router

    async def handle_webhook(self, secret: str | None, body: bytes) -> JSONResponse:
        """Check the secret, parse and queue the update; the HTTP response for Telegram."""
        if secret is None or not hmac.compare_digest(secret.encode(), self.secret.encode()):
            return JSONResponse({"ok": False, "error": "forbidden"}, status_code=403)
        if len(body) > MAX_BODY_BYTES:
            return JSONResponse({"ok": False, "error": "too large"}, status_code=413)
        try:
            data = json.loads(body)
            if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
                raise ValueError("not an Update")
            update = Update.de_json(data, self.application.bot)
        except Exception as exc:
            log.warning("telegram webhook: malformed update (%s)", type(exc).__name__)
            return JSONResponse({"ok": False, "error": "malformed update"}, status_code=400)
        if not self._started:
            return JSONResponse({"ok": False, "error": "not running"}, status_code=503)
        await self.application.update_queue.put(update)
        return JSONResponse({"ok": True})


__all__ = [
    "APOLOGY",
    "OutgoingRateLimiter",
    "PerChatUpdateProcessor",
    "TelegramChannel",
    "TelegramSettings",
    "keyboard",
    "media_kind",
]
