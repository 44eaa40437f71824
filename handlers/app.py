"""The one ASGI application that ``ldtbxh serve`` runs: web chat, configured channels, health.

``create_app(settings)`` builds a FastAPI app around one :class:`bot.dialogue.Dialogue`:

* ``GET /healthz``: ``{"status", "index_version", "db"}``; 503 when the database does not answer.
* the web chat (:mod:`handlers.web`): ``GET /`` and ``/api/chat``; always on.
* channel adapters (Telegram, Zalo...) found by :func:`configured_channels`; each one's ``router`` is
  mounted as it is and the lifespan calls its ``start()``/``stop()``.
* the officers' console at ``/console`` when ``handlers.console`` exists.

Background tasks during the lifespan: the index hot reload (``AssistantHolder.check_reload`` every
``LDTBXH_RELOAD_SECONDS``, loaded in a thread) and the outbox worker, which delivers due outbox messages
through the channel of the same name (web chat messages are picked up by the page's polling instead).

Blocking work (the model, the database) runs in a thread pool so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import event, update
from sqlalchemy import text as sql_text
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.config import ConfigError, Settings
from bot.dialogue import Dialogue
from bot.messages import Button
from bot.models import Outbox, utcnow
from bot.store import Store

log = logging.getLogger(__name__)

T = TypeVar("T")

GENERIC_ERROR = ("Xin lỗi, hệ thống đang gặp sự cố. Bạn vui lòng thử lại sau ít phút, "
                 "hoặc gọi đường dây nóng của Sở.")
NOT_FOUND = "Không tìm thấy địa chỉ này."


# --- options of the server (same LDTBXH_ prefix as the main settings) ------------------------------

class ServeOptions(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LDTBXH_", env_file=".env", extra="ignore")

    reload_seconds: float = Field(default=10.0, gt=0, le=3600)
    """How often each server process checks for a newly activated index version."""
    outbox_poll_seconds: float = Field(default=5.0, gt=0, le=3600)
    """How often the outbox worker looks for messages to deliver."""
    outbox_max_attempts: int = Field(default=5, ge=1, le=50)
    """Delivery attempts before an outbox message is marked failed (back-off 30 s, 60 s, 120 s...)."""
    outbox_send_timeout: float = Field(default=30.0, gt=0, le=600)
    web_rate_per_minute: int = Field(default=60, ge=0, le=100000)
    """Web chat messages allowed per client IP per minute (0: no limit). Offices behind one NAT share it."""
    web_max_body_bytes: int = Field(default=4096, ge=512, le=1_000_000)
    """Largest accepted /api/chat request body."""
    dialogue_threads: int = Field(default=0, ge=0, le=256)
    """Threads that run the dialogue (model + database); 0: six per CPU core, at least 8 (more threads
    waiting on the model make bigger, cheaper batches)."""

    embed_batch: int = Field(default=32, ge=1, le=256)
    """Most questions embedded in one forward pass of the model."""
    embed_cache_size: int = Field(default=4096, ge=0, le=1_000_000)
    """Question vectors remembered (LRU on the exact text); 0: none."""

    sqlite_synchronous: str = Field(default="NORMAL", pattern="^(FULL|NORMAL)$")
    """SQLite only: NORMAL (with WAL: no fsync per commit; safe against a crash of the program, the
    last transactions may be lost on a power cut) or FULL (fsync every commit, about half the speed)."""

    def threads(self) -> int:
        return self.dialogue_threads or max(8, 6 * (os.cpu_count() or 1))


def load_serve_options(**overrides: Any) -> ServeOptions:
    try:
        return ServeOptions(**overrides)
    except ValidationError as exc:
        lines = ["Cấu hình không hợp lệ (invalid configuration):"]
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            lines.append(f"  LDTBXH_{loc.upper()}: {err['msg']}")
        raise ConfigError("\n".join(lines)) from None


# --- the channel plug-in point ---------------------------------------------------------------------

@runtime_checkable
class Channel(Protocol):
    """What a channel adapter (handlers.telegram, handlers.zalo...) provides to the server."""

    name: str
    """The channel name used in ``Incoming.channel`` and in the outbox (``telegram``, ``zalo``)."""
    router: APIRouter | None
    """Webhook routes, mounted as they are (the channel chooses its paths); None for polling channels."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, chat_id: str, text: str, buttons: list[Button]) -> None:
        """Deliver one message; raise on failure (the outbox worker retries later)."""
        ...


CHANNEL_MODULES = (("handlers.telegram", "TelegramChannel"), ("handlers.zalo", "ZaloChannel"))


def configured_channels(settings: Settings, dialogue: Dialogue, store: Store) -> list[Any]:
    """The channel adapters that exist in this installation and are configured.

    Each module's class has ``from_settings(settings, dialogue, store)`` returning None when its
    settings (tokens...) are not set. A missing module, or one whose dependencies are missing, is skipped.
    """
    out: list[Any] = []
    for module_name, class_name in CHANNEL_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            if exc.name == module_name:
                log.debug("channel module %s is not installed", module_name)
            else:
                log.warning("channel module %s cannot be imported (%s); channel disabled", module_name, exc)
            continue
        cls = getattr(module, class_name, None)
        if cls is None:
            log.warning("%s has no %s; channel disabled", module_name, class_name)
            continue
        channel = cls.from_settings(settings, dialogue, store)
        if channel is not None:
            log.info("channel %s enabled", channel.name)
            out.append(channel)
    return out


def console_router(settings: Settings, dialogue: Dialogue, store: Store) -> APIRouter | None:
    """The officers' console router from ``handlers.console`` if that module exists."""
    try:
        module = importlib.import_module("handlers.console")
    except ImportError as exc:
        if exc.name not in ("handlers.console",):
            log.warning("the console cannot be imported (%s); /console disabled", exc)
        return None
    factory = getattr(module, "console_router", None)
    if factory is None:
        return None
    router: APIRouter | None = factory(settings, dialogue.holder, store)
    return router


# --- the outbox worker ------------------------------------------------------------------------------

def claim_outbox(store: Store, outbox_id: int, hold: timedelta = timedelta(minutes=5)) -> bool:
    """Take one due message for delivery (so two server processes never send it twice)."""
    now = utcnow()
    with store.session() as s:
        res = s.execute(
            update(Outbox)
            .where(Outbox.id == outbox_id, Outbox.status == "pending", Outbox.next_attempt_at <= now)
            .values(next_attempt_at=now + hold)
        )
        return bool(getattr(res, "rowcount", 0) == 1)


async def deliver_outbox_once(store: Store, channels: dict[str, Any], *, max_attempts: int = 5,
                              send_timeout: float = 30.0, batch: int = 50) -> int:
    """Send every due outbox message of the given channels once; returns how many were delivered."""
    delivered = 0
    for name, channel in channels.items():
        if name == "web":  # the web page polls for its messages
            continue
        due = await asyncio.to_thread(store.due_outbox, name, batch)
        for msg in due:
            if not await asyncio.to_thread(claim_outbox, store, msg.id):
                continue
            try:
                await asyncio.wait_for(channel.send(msg.chat_id, msg.text, list(msg.buttons)), send_timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                status = await asyncio.to_thread(store.mark_outbox_failed, msg.id, error,
                                                 max_attempts=max_attempts)
                log.warning("outbox %s to %s failed (attempt %s, now %s): %s", msg.id, name,
                            msg.attempts + 1, status, error)
            else:
                await asyncio.to_thread(store.mark_outbox_sent, msg.id)
                delivered += 1
    return delivered


# --- the embedder as served: concurrent questions embedded together, recent ones remembered -------

class _Pending:
    __slots__ = ("text", "prefix", "vector", "error", "done")

    def __init__(self, text: str, prefix: str) -> None:
        self.text = text
        self.prefix = prefix
        self.vector: np.ndarray | None = None
        self.error: BaseException | None = None
        self.done = False


class BatchingEmbedder:
    """Wraps an embedder for the server (same interface as :class:`indexer.embed.Embedder`).

    * Single-text calls (a citizen's question) made while the model is busy wait and are embedded
      together in the next batch ("group commit": no added delay when the server is idle). One forward
      pass over 8 short questions costs far less than 8 passes, so throughput grows with load.
    * The vectors of recent questions are kept in a small LRU keyed on (prefix, text): the same
      question asked again skips the model (retrieval and the answer policy still run on the current index).
    * Multi-text calls (index builds) go straight to the wrapped embedder.
    """

    def __init__(self, inner: Any, *, max_batch: int = 32, cache_size: int = 4096) -> None:
        self.inner = inner
        self.name: str = inner.name
        self.dim: int = int(inner.dim)
        self.max_batch = max_batch
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._cv = threading.Condition()
        self._queue: list[_Pending] = []
        self._busy = False
        self.batches = 0
        self.hits = 0

    def warm_up(self) -> None:
        self.inner.warm_up()
        self.dim = int(self.inner.dim)

    def embed(self, texts: list[str], prefix: str) -> np.ndarray:
        if len(texts) != 1:
            return np.asarray(self.inner.embed(texts, prefix), dtype=np.float32)
        key = (prefix, texts[0])
        with self._cv:
            hit = self._cache.get(key) if self.cache_size else None
            if hit is not None:
                self._cache.move_to_end(key)
                self.hits += 1
                return hit.reshape(1, -1).copy()
            me = _Pending(texts[0], prefix)
            self._queue.append(me)
            while not me.done and self._busy:
                self._cv.wait()
            if not me.done:  # the model is free: embed everything waiting, this question included
                others = [p for p in self._queue if p is not me]
                batch, self._queue = [me, *others[: self.max_batch - 1]], others[self.max_batch - 1:]
                self._busy = True
        if not me.done:
            self._run(batch)
        if me.error is not None:
            raise me.error
        assert me.vector is not None
        return me.vector.reshape(1, -1).copy()

    def _run(self, batch: list[_Pending]) -> None:
        try:
            for prefix in dict.fromkeys(p.prefix for p in batch):
                group = [p for p in batch if p.prefix == prefix]
                try:
                    vecs = np.asarray(self.inner.embed([p.text for p in group], prefix), dtype=np.float32)
                    for p, v in zip(group, vecs, strict=True):
                        p.vector = v
                except BaseException as exc:
                    for p in group:
                        p.error = exc
        finally:
            with self._cv:
                for p in batch:
                    p.done = True
                    if p.vector is not None:
                        self._cache[(p.prefix, p.text)] = p.vector
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
                self.batches += 1
                self._busy = False
                self._cv.notify_all()


def serving_dialogue(settings: Settings, options: ServeOptions | None = None) -> Dialogue:
    """The dialogue as served: the configured embedder wrapped in a :class:`BatchingEmbedder`."""
    from bot.runtime import AssistantHolder
    from indexer.embed import make_embedder

    options = options or load_serve_options()
    store = Store(settings)
    if store.engine.url.get_backend_name() == "sqlite":
        mode = options.sqlite_synchronous

        @event.listens_for(store.engine, "connect")
        def _synchronous(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA synchronous={mode}")
            cur.close()

        store.engine.dispose()  # reconnect with the pragma
    embedder = BatchingEmbedder(make_embedder(settings.embedding_model, settings.embedding_backend,
                                              settings.models_dir),
                                max_batch=options.embed_batch, cache_size=options.embed_cache_size)
    holder = AssistantHolder(settings, embedder=embedder, active_version=store.active_kb_version)
    return Dialogue.from_settings(settings, store=store, holder=holder)


# --- the application --------------------------------------------------------------------------------

def db_ok(store: Store) -> bool:
    try:
        with store.engine.connect() as conn:
            conn.execute(sql_text("SELECT 1"))
        return True
    except Exception:
        log.warning("database health check failed", exc_info=True)
        return False


def _error(status: int, message: str) -> JSONResponse:
    """The error body of every API answer: a message and the same as a reply the web page can show."""
    return JSONResponse({"error": message, "replies": [{"text": message, "kind": "error", "buttons": []}]},
                        status_code=status)


async def run_blocking(app: FastAPI, fn: Callable[..., T], *args: Any) -> T:
    """Run blocking work (model, database) in the app's thread pool (or the default one)."""
    executor: ThreadPoolExecutor | None = getattr(app.state, "executor", None)
    if executor is None:
        return await asyncio.to_thread(fn, *args)
    return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)


def create_app(settings: Settings, dialogue: Dialogue | None = None, *, channels: list[Any] | None = None,
               options: ServeOptions | None = None) -> FastAPI:
    """The ASGI app. ``channels=None``: the configured ones (:func:`configured_channels`)."""
    from handlers.web import web_router

    options = options or load_serve_options()
    dialogue = dialogue or serving_dialogue(settings, options)
    store = dialogue.store
    holder = dialogue.holder
    if channels is None:
        channels = configured_channels(settings, dialogue, store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.executor = ThreadPoolExecutor(max_workers=options.threads(), thread_name_prefix="dialogue")
        try:
            await asyncio.to_thread(lambda: holder.current)  # load the index and warm the model up
        except Exception:
            log.exception("the knowledge index could not be loaded at start-up")
        started: list[Any] = []
        for ch in channels:
            try:
                await ch.start()
                started.append(ch)
            except Exception:
                log.exception("channel %s failed to start; the other channels keep running", ch.name)
        tasks = [asyncio.create_task(_reload_loop(), name="index-reload"),
                 asyncio.create_task(_outbox_loop(started), name="outbox")]
        app.state.tasks = tasks
        try:
            yield
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for ch in reversed(started):
                try:
                    await ch.stop()
                except Exception:
                    log.exception("channel %s failed to stop cleanly", ch.name)
            app.state.executor.shutdown(wait=False, cancel_futures=True)
            app.state.executor = None

    async def _reload_loop() -> None:
        while True:
            await asyncio.sleep(options.reload_seconds)
            try:
                if await asyncio.to_thread(holder.check_reload):
                    log.info("now serving knowledge index %s", holder.version)
            except Exception:
                log.exception("index reload failed; still serving %s", holder.version)

    async def _outbox_loop(active: list[Any]) -> None:
        by_name = {ch.name: ch for ch in active}
        while True:
            try:
                await deliver_outbox_once(store, by_name, max_attempts=options.outbox_max_attempts,
                                          send_timeout=options.outbox_send_timeout)
            except Exception:
                log.exception("outbox worker round failed")
            await asyncio.sleep(options.outbox_poll_seconds)

    app = FastAPI(title="Trợ lý ảo " + settings.dept_name, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.settings = settings
    app.state.options = options
    app.state.dialogue = dialogue
    app.state.store = store
    app.state.holder = holder
    app.state.channels = channels
    app.state.executor = None

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return _error(404, NOT_FOUND)
        if exc.status_code == 405:
            return _error(405, "Phương thức không được hỗ trợ ở địa chỉ này.")
        detail = exc.detail if isinstance(exc.detail, str) else GENERIC_ERROR
        return _error(exc.status_code, detail)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(400, "Yêu cầu không hợp lệ.")

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, GENERIC_ERROR)

    @app.middleware("http")
    async def _headers(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        ok = await asyncio.to_thread(db_ok, store)
        body = {"status": "ok" if ok else "error", "index_version": holder.version, "db": ok,
                "channels": ["web", *(ch.name for ch in channels)]}
        return JSONResponse(body, status_code=200 if ok else 503)

    app.include_router(web_router(settings, dialogue, options))
    for ch in channels:
        if ch.router is not None:
            app.include_router(ch.router)
    console = console_router(settings, dialogue, store)
    if console is not None:
        prefix = "" if (console.prefix or "").startswith("/console") else "/console"
        app.include_router(console, prefix=prefix)
    return app


def setup_logging(level: int = logging.INFO) -> None:
    """Log to stderr with personal data masked (idempotent; also run in each uvicorn worker process)."""
    from bot.privacy import install_log_filter

    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_filter()
    for noisy in ("alembic", "faiss", "sentence_transformers", "bm25s", "httpx"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        install_log_filter(logging.getLogger(name))


def app_from_env() -> FastAPI:
    """Factory for uvicorn (``--factory handlers.app:app_from_env``): settings from the environment."""
    from bot.config import load_settings

    setup_logging()
    return create_app(load_settings())
