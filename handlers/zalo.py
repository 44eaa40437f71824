"""The Zalo Official Account channel: a signed webhook in, the OA API v3 customer-service message out.

Incoming (``POST /zalo/webhook``)
    Zalo signs every event with ``X-ZEvent-Signature: mac=<sha256 hex of app_id + raw body + timestamp
    + OA secret key>`` (``timestamp`` is the event's own field, in milliseconds). The endpoint checks the
    signature over the raw bytes (401 when missing or wrong), rejects malformed bodies (400), events whose
    timestamp is outside ``replay_window_seconds`` and events already seen (by ``message.msg_id``, else by
    the signature) with 409. A good event is cleaned and stored in the durable inbox (its key unique
    per channel, so a replay is refused across restarts and processes) before the 200; when the
    database does not answer, it is appended to a local spool file (``<data_dir>/spool/zalo.jsonl``,
    fsync-ed) and still answered 200 (Zalo does not retry reliably), and the spool is replayed into the
    inbox as soon as the database is back. The inbox worker then answers it (:mod:`handlers.inbox`).

    ``user_send_text`` -> text; ``user_send_image|sticker|gif|audio|video|file|location|link|...`` ->
    ``Incoming(payload="media:<kind>")``; ``follow`` -> ``payload="help"``; anything else (the OA's own
    ``oa_send_*`` echoes, ``user_seen_message``, ``unfollow``...) is acknowledged and ignored.

Buttons
    Zalo has no callback data: a button of type ``oa.query.show`` (or ``oa.query.hide``, setting
    ``button_type``) sends its payload back as a text message from the user. The payload text is
    ``"#" + payload`` (``#fb:1``, ``#pick:tctn-huong-muc``, ``#help``). An incoming text that is exactly
    ``#`` followed by a payload of a known namespace (``help``, ``pick:``, ``detail:``, ``fb:``,
    ``dossier:``, ``followup:``: :data:`bot.protocol.PAYLOAD_NAMESPACES`) becomes ``Incoming.payload``; every
    other text (including ``#media:...`` and ordinary hashtags) stays text. A citizen typing ``#fb:1``
    by hand gets exactly what pressing the button gives, which is harmless.

Outgoing
    ``POST {api_base}/v3.0/oa/message/cs`` with header ``access_token``; replies longer than 2000
    characters are split with :func:`bot.dialogue.split_message`, buttons (at most 5) on the last part.
    Zalo answers HTTP 200 with ``{"error": <code>, ...}``: 0 is success; -216/-124 (invalid/expired access
    token) -> refresh, retry once; network errors, 5xx and other codes -> :class:`ZaloSendError`. Every
    reply goes through the outbox; the deliverer calls :meth:`ZaloChannel.send`, which raises so that it
    retries, until ``reply_window_hours`` (Zalo's window for customer-service messages) has passed.

Tokens
    Kept in the ``channel_tokens`` table (row ``zalo``), seeded from ``LDTBXH_ZALO_REFRESH_TOKEN`` /
    ``LDTBXH_ZALO_ACCESS_TOKEN`` on first start. The refresh token is single-use, so a refresh
    (``POST {oauth_base}/v4/oa/access_token``) happens under the row lock (``bot.storage.tokens``, plus an
    in-process lock): the row is re-read, the call skipped when another worker already refreshed, and the
    new pair stored before the lock is released. The access token is refreshed
    when it expires within ``refresh_margin_seconds`` (checked before each send and periodically) and on
    the expired-token error.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from bot.config import Settings, ZaloSettings, secret_value
from bot.dialogue import Dialogue
from bot.messages import Button, Incoming, clean_json, split_message
from bot.protocol import HELP, MEDIA, PAYLOAD_NAMESPACES
from bot.storage import Storage
from bot.storage.models import utcnow
from bot.storage.tokens import ChannelTokens, Tokens
from handlers.spool import Spool

log = logging.getLogger(__name__)

CHANNEL = "zalo"
TEXT_LIMIT = 2000
"""Zalo's limit on the text of one message."""
MAX_BUTTONS = 5
BUTTON_TITLE_LIMIT = 100
TOKEN_ERRORS = frozenset({-216, -124})
"""Zalo error codes meaning the access token is invalid or expired."""
PAYLOAD_MARK = "#"
_PAYLOAD_RE = re.compile(
    "^" + re.escape(PAYLOAD_MARK) + "((?:"
    + "|".join(re.escape(ns) + (r"[A-Za-z0-9._:=\-]{1,100}" if ns.endswith(":") else "")
               for ns in PAYLOAD_NAMESPACES) + "))$")
"""Payloads that may come back as ``#<payload>`` text (see the module docstring)."""
MEDIA_EVENTS = {
    "user_send_image": "image",
    "user_send_sticker": "sticker",
    "user_send_gif": "gif",
    "user_send_audio": "audio",
    "user_send_video": "video",
    "user_send_file": "file",
    "user_send_location": "location",
    "user_send_link": "link",
    "user_send_business_card": "business_card",
}
_LOOPS = ("zalo-token-refresh", "zalo-spool")

# --- errors -------------------------------------------------------------------------------------------

class ZaloError(RuntimeError):
    pass


class ZaloTokenError(ZaloError):
    """No usable token: the refresh failed (a burnt or revoked refresh token needs re-authorisation)."""


class ZaloSendError(ZaloError):
    """A message could not be delivered. ``sent``: how many leading parts were delivered before."""

    def __init__(self, message: str, *, sent: int = 0, code: int | None = None) -> None:
        super().__init__(message)
        self.sent = sent
        self.code = code


# --- signatures and event parsing ---------------------------------------------------------------------

def signature(app_id: str, body: bytes, timestamp: str, oa_secret_key: str) -> str:
    """The ``X-ZEvent-Signature`` value Zalo sends for ``body``: ``mac=`` + sha256 hex."""
    digest = hashlib.sha256(app_id.encode() + body + timestamp.encode() + oa_secret_key.encode()).hexdigest()
    return f"mac={digest}"


def payload_text(payload: str) -> str:
    """The text a Zalo query button sends back for ``payload``."""
    return PAYLOAD_MARK + payload


def text_to_payload(text: str) -> str | None:
    """The button payload an incoming text stands for, or None when it is ordinary text."""
    m = _PAYLOAD_RE.match(text.strip())
    return m.group(1) if m else None


def event_to_incoming(event: dict[str, Any]) -> Incoming | None:
    """The dialogue message of a webhook event, or None for events the assistant does not answer."""
    name = str(event.get("event_name") or "")
    if name == "follow":
        uid = (event.get("follower") or {}).get("id") or (event.get("sender") or {}).get("id")
        return Incoming(CHANNEL, str(uid), payload=HELP) if uid else None
    if not name.startswith("user_send_"):
        return None
    uid = (event.get("sender") or {}).get("id")
    if not uid:
        return None
    message = event.get("message") or {}
    if name == "user_send_text":
        text = str(message.get("text") or "")
        payload = text_to_payload(text)
        if payload is not None:
            return Incoming(CHANNEL, str(uid), text="", payload=payload)
        return Incoming(CHANNEL, str(uid), text=text)
    kind = MEDIA_EVENTS.get(name) or re.sub(r"[^a-z0-9_]", "", name[len("user_send_"):])[:32] or "media"
    return Incoming(CHANNEL, str(uid), payload=f"{MEDIA}{kind}")


def _timestamp_seconds(value: Any) -> float | None:
    try:
        ts = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return ts / 1000.0 if ts > 10**11 else float(ts)  # Zalo sends milliseconds


class _SeenEvents:
    """Event keys seen within the replay window (events older than it are rejected by their timestamp)."""

    def __init__(self, ttl: float, max_size: int = 100_000) -> None:
        self.ttl = ttl
        self.max_size = max_size
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, key: str) -> bool:
        """Record ``key``; False when it was already seen."""
        now = time.monotonic()
        with self._lock:
            while self._seen and (next(iter(self._seen.values())) < now - self.ttl
                                  or len(self._seen) >= self.max_size):
                self._seen.popitem(last=False)
            if key in self._seen:
                return False
            self._seen[key] = now
            return True

    def has(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            seen = self._seen.get(key)
            return seen is not None and seen >= now - self.ttl


# --- tokens --------------------------------------------------------------------------------------------

class TokenManager:
    """The OA's access token from ``channel_tokens``, refreshed atomically (see the module docstring)."""

    def __init__(self, settings: ZaloSettings, tokens: ChannelTokens, http: httpx.Client, *,
                 channel: str = CHANNEL) -> None:
        self.settings = settings
        self.tokens = tokens
        self.http = http
        self.channel = channel
        self._lock = threading.Lock()
        self.refreshes = 0

    def seed(self) -> None:
        """Store the configured tokens when there is no row yet (or when ``reseed_tokens`` is set)."""
        refresh = secret_value(self.settings.refresh_token) or None
        access = secret_value(self.settings.access_token) or None
        if refresh is None and access is None:
            if self.tokens.get(self.channel) is None:
                log.warning("zalo: no tokens stored or configured; set LDTBXH_ZALO_REFRESH_TOKEN")
            return
        if self.tokens.seed(self.channel, access, refresh, overwrite=self.settings.reseed_tokens):
            log.info("zalo: tokens seeded from the environment")

    def _expiring(self, row: Tokens, now: datetime) -> bool:
        margin = timedelta(seconds=self.settings.refresh_margin_seconds)
        return row.expires_at is not None and row.expires_at <= now + margin

    def current(self) -> str:
        """A usable access token: the stored one, or a fresh one when it is missing or about to expire."""
        row = self.tokens.get(self.channel)
        if row is not None and row.access_token and not self._expiring(row, utcnow()):
            return row.access_token
        return self.refresh(row.access_token if row is not None else None)

    def needs_refresh(self) -> bool:
        row = self.tokens.get(self.channel)
        return row is not None and bool(row.refresh_token) and (
            not row.access_token or self._expiring(row, utcnow()))

    def refresh(self, stale: str | None) -> str:
        """Replace ``stale`` (the token found expiring or rejected) with a new one; returns the token to use.

        Under the row lock: when another worker has already replaced ``stale`` with a token that is not
        expiring, that token is returned and the single-use refresh token is not spent.
        """
        def exchange(row: Tokens | None) -> Tokens | str:
            if row is None or not row.refresh_token:
                raise ZaloTokenError("no Zalo refresh token stored; set LDTBXH_ZALO_REFRESH_TOKEN "
                                     "(and LDTBXH_ZALO_RESEED_TOKENS=true if a row exists)")
            now = utcnow()
            if row.access_token and row.access_token != stale and not self._expiring(row, now):
                return row.access_token
            data = self._call_refresh(row.refresh_token)
            try:
                expires_in = int(str(data.get("expires_in") or "90000"))
            except ValueError:
                expires_in = 90000
            self.refreshes += 1
            log.info("zalo: access token refreshed (valid %s s)", expires_in)
            return Tokens(str(data["access_token"]), str(data.get("refresh_token") or "") or None,
                          now + timedelta(seconds=expires_in))

        with self._lock:
            return self.tokens.refresh(self.channel, exchange)

    def _call_refresh(self, refresh_token: str) -> dict[str, Any]:
        url = self.settings.oauth_base.rstrip("/") + "/v4/oa/access_token"
        try:
            r = self.http.post(url, headers={"secret_key": secret_value(self.settings.app_secret_key)},
                               data={"refresh_token": refresh_token, "app_id": self.settings.app_id,
                                     "grant_type": "refresh_token"})
        except httpx.HTTPError as exc:
            # The refresh token may or may not have been spent: nothing is stored, the next try shows.
            raise ZaloTokenError(f"token refresh failed: {type(exc).__name__}") from exc
        try:
            data = r.json()
        except ValueError:
            data = {}
        if r.status_code != 200 or not isinstance(data, dict) or not data.get("access_token"):
            err = data.get("error") if isinstance(data, dict) else None
            desc = (data.get("error_description") or data.get("error_name") or data.get("message")
                    if isinstance(data, dict) else None)
            log.error("zalo: token refresh rejected (HTTP %s, error %s: %s); if the refresh token was spent "
                      "or revoked, re-authorise the OA and set LDTBXH_ZALO_REFRESH_TOKEN with "
                      "LDTBXH_ZALO_RESEED_TOKENS=true", r.status_code, err, desc)
            raise ZaloTokenError(f"token refresh rejected: HTTP {r.status_code}, error {err}: {desc}")
        return data


# --- the channel ----------------------------------------------------------------------------------------

class ZaloChannel:
    name = CHANNEL

    def __init__(self, settings: ZaloSettings, dialogue: Dialogue, store: Storage, *,
                 spool_dir: Path | None = None, spool_every: float = 2.0) -> None:
        self.settings = settings
        self.dialogue = dialogue
        self.outbox = store.outbox
        self.inbox = store.inbox
        self.spool = Spool((spool_dir or dialogue.settings.data_dir / "spool") / "zalo.jsonl")
        self.spool_every = spool_every
        self.reply_window = timedelta(hours=settings.reply_window_hours)
        self._wake: Callable[[], None] = lambda: None
        self.http = httpx.Client(timeout=settings.http_timeout_seconds)
        self.tokens = TokenManager(settings, store.tokens, self.http)
        self._seen = _SeenEvents(ttl=2 * settings.replay_window_seconds + 60)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._started = False
        self.router = APIRouter()
        self.router.add_api_route("/zalo/webhook", self._webhook, methods=["POST"], include_in_schema=False)

    @classmethod
    def from_settings(cls, settings: Settings, dialogue: Dialogue, store: Storage) -> ZaloChannel | None:
        """The channel, or None when ``LDTBXH_ZALO_*`` is not configured."""
        if not settings.zalo.enabled:
            return None
        return cls(settings.zalo, dialogue, store)

    # --- life cycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        self._closing = False
        if self.http.is_closed:  # started again after stop()
            self.http = self.tokens.http = httpx.Client(timeout=self.settings.http_timeout_seconds)
        await asyncio.to_thread(self.tokens.seed)
        if self.settings.refresh_check_seconds > 0:
            self._spawn(self._refresh_loop(), name="zalo-token-refresh")
        self._spawn(self._spool_loop(), name="zalo-spool")
        self._started = True

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop taking events; let the background tasks finish for up to ``timeout`` s, cancel the rest."""
        self._closing = True
        tasks = [t for t in self._tasks if t.get_name() not in _LOOPS]
        for t in self._tasks - set(tasks):
            t.cancel()
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=timeout)
            for t in pending:
                t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self.http.close()
        self._started = False

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _refresh_loop(self) -> None:
        while True:
            try:
                if await asyncio.to_thread(self.tokens.needs_refresh):
                    await asyncio.to_thread(self.tokens.current)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep checking; sending will surface the problem too
                log.warning("zalo: periodic token refresh failed: %s", exc)
            await asyncio.sleep(self.settings.refresh_check_seconds)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until the background work of the events received so far is done (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while True:
            tasks = [t for t in self._tasks if t.get_name() not in _LOOPS]
            if not tasks:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("zalo background tasks still running")
            await asyncio.wait(tasks, timeout=left)

    # --- the webhook ----------------------------------------------------------------------------------
    @staticmethod
    def _error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"ok": False, "error": message}, status_code=status)

    async def _webhook(self, request: Request) -> JSONResponse:
        if self._closing:
            return self._error(503, "shutting down")
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > self.settings.max_body_bytes:
            return self._error(413, "body too large")
        raw = await request.body()
        if len(raw) > self.settings.max_body_bytes:
            return self._error(413, "body too large")
        try:
            event = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return self._error(400, "malformed body: not JSON")
        if not isinstance(event, dict):
            return self._error(400, "malformed body: not a JSON object")
        ts_raw = event.get("timestamp")
        ts = _timestamp_seconds(ts_raw)
        if ts is None:
            return self._error(400, "malformed body: no valid timestamp")
        given = request.headers.get("x-zevent-signature", "").strip()
        expected = signature(self.settings.app_id, raw, str(ts_raw).strip(),
                             secret_value(self.settings.oa_secret_key))
        if not given or not hmac.compare_digest(given.lower().encode(), expected.encode()):
            log.warning("zalo: webhook with a missing or bad signature rejected")
            return self._error(401, "invalid signature")
        if abs(time.time() - ts) > self.settings.replay_window_seconds:
            log.warning("zalo: webhook event with a timestamp outside the window rejected")
            return self._error(409, "replayed or stale event: timestamp outside the accepted window")
        msg_id = (event.get("message") or {}).get("msg_id") if isinstance(event.get("message"), dict) else None
        key = f"msg:{msg_id}" if msg_id else f"sig:{given.lower()}"
        if self._seen.has(key):
            log.info("zalo: duplicate webhook event rejected")
            return self._error(409, "replayed event: already received")
        event = clean_json(event)
        try:
            incoming = event_to_incoming(event)
        except (AttributeError, TypeError):
            return self._error(400, "malformed event")
        if incoming is None:
            return JSONResponse({"ok": True, "ignored": str(event.get("event_name") or "")[:64]})
        try:
            rec = await asyncio.to_thread(self.inbox.record, CHANNEL, key, incoming.chat_id, event)
        except Exception as exc:
            # The database is down: keep the promise with the local spool, replayed when it is back.
            try:
                await asyncio.to_thread(self.spool.append, {"event_id": key, "chat_id": incoming.chat_id,
                                                            "payload": event})
            except Exception as exc2:
                log.error("zalo: event could be neither stored (%s) nor spooled (%s)", type(exc).__name__,
                          type(exc2).__name__)
                return self._error(503, "temporarily unavailable")
            log.warning("zalo: database unavailable (%s); event spooled locally", type(exc).__name__)
            self._seen.add(key)
            return JSONResponse({"ok": True, "spooled": True})
        self._seen.add(key)
        if rec is None:
            log.info("zalo: duplicate webhook event rejected")
            return self._error(409, "replayed event: already received")
        self._wake()
        return JSONResponse({"ok": True})

    def attach(self, wake: Callable[[], None]) -> None:
        """Called by whoever runs the inbox worker: ``wake`` is called after each recorded event."""
        self._wake = wake

    async def incoming(self, payload: dict[str, Any]) -> Incoming | None:
        """The dialogue message of a stored event (the inbox worker calls this)."""
        return event_to_incoming(payload)

    def _replay(self, record: dict[str, Any]) -> None:
        self.inbox.record(CHANNEL, str(record["event_id"]), str(record["chat_id"]), dict(record["payload"]))

    async def _spool_loop(self) -> None:
        while True:
            try:
                if self.spool.pending():
                    replayed = await asyncio.to_thread(self.spool.replay, self._replay)
                    if replayed:
                        self._wake()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("zalo: spool replay failed: %s", type(exc).__name__)
            await asyncio.sleep(self.spool_every)

    def permanent_error(self, exc: BaseException) -> bool:
        return False

    # --- sending --------------------------------------------------------------------------------------
    async def send(self, chat_id: str, text: str, buttons: list[Button]) -> None:
        """Deliver one message (split within 2000 characters, buttons on the last part).

        Raises :class:`ZaloError` when nothing was delivered (the outbox worker retries). When some parts
        went out and a later one failed, the undelivered rest is queued as a new outbox message and this
        returns normally, so the citizen never gets the first parts twice.
        """
        parts = split_message(text, TEXT_LIMIT)
        try:
            await asyncio.to_thread(self._deliver, chat_id, parts, list(buttons))
        except ZaloSendError as exc:
            if exc.sent == 0:
                raise
            rest = "\n\n".join(parts[exc.sent:])
            oid = await asyncio.to_thread(self.outbox.enqueue, CHANNEL, chat_id, rest, buttons)
            log.warning("zalo: %s of %s parts delivered; the rest queued as outbox %s", exc.sent,
                        len(parts), oid)

    def _deliver(self, chat_id: str, parts: list[str], buttons: list[Button]) -> None:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            try:
                self._post_message(chat_id, self._message(part, buttons if last else []))
            except ZaloTokenError as exc:
                raise ZaloSendError(str(exc), sent=i) from exc
            except ZaloSendError as exc:
                exc.sent = i
                raise

    def _message(self, text: str, buttons: list[Button]) -> dict[str, Any]:
        message: dict[str, Any] = {"text": text}
        if buttons:
            if len(buttons) > MAX_BUTTONS:  # keep the first ones and the last ("talk to an officer")
                buttons = [*buttons[:MAX_BUTTONS - 1], buttons[-1]]
            message["attachment"] = {"type": "template", "payload": {"buttons": [
                {"title": b.label[:BUTTON_TITLE_LIMIT], "type": self.settings.button_type,
                 "payload": payload_text(b.payload)} for b in buttons]}}
        return message

    def _post_message(self, user_id: str, message: dict[str, Any]) -> None:
        body = {"recipient": {"user_id": str(user_id)}, "message": message}
        token = self.tokens.current()
        for attempt in (1, 2):
            code, desc = self._post_once(token, body)
            if code == 0:
                return
            if code in TOKEN_ERRORS and attempt == 1:
                log.info("zalo: access token rejected (error %s); refreshing", code)
                token = self.tokens.refresh(token)
                continue
            raise ZaloSendError(f"Zalo API error {code}: {desc}", code=code)

    def _post_once(self, token: str, body: dict[str, Any]) -> tuple[int, str]:
        url = self.settings.api_base.rstrip("/") + "/v3.0/oa/message/cs"
        try:
            r = self.http.post(url, headers={"access_token": token}, json=body)
        except httpx.HTTPError as exc:
            raise ZaloSendError(f"Zalo API unreachable: {type(exc).__name__}: {exc}") from exc
        if r.status_code != 200:
            raise ZaloSendError(f"Zalo API HTTP {r.status_code}")
        try:
            data = r.json()
            code = int(data.get("error", 0))
        except (ValueError, AttributeError, TypeError) as exc:
            raise ZaloSendError("Zalo API answered something that is not its JSON") from exc
        return code, str(data.get("message") or "")


__all__ = ["ZaloChannel", "ZaloError", "ZaloSendError", "ZaloTokenError", "TokenManager", "signature",
           "payload_text", "text_to_payload", "event_to_incoming"]
