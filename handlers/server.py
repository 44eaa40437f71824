"""The one ASGI application that ``ldtbxh serve`` runs: web chat, configured channels, console, health.

``create_app(settings)`` builds a FastAPI app around one :class:`bot.dialogue.Dialogue`:

* ``GET /healthz``: ``{"status", "index_version", "db", "channels"}``; 503 when the database does not answer.
* the web chat (:mod:`handlers.web`): ``GET /`` and ``/api/chat``; always on.
* the channels of :mod:`handlers.channels` whose settings are set: each one's ``router`` is mounted as it
  is and the lifespan calls its ``start()``/``stop()``.
* the officers' console at ``/console`` (:mod:`handlers.console`).

Background tasks during the lifespan: the index hot reload (``AssistantHolder.check_reload`` every
``LDTBXH_RELOAD_SECONDS``, loaded in a thread), the inbox worker (:mod:`handlers.inbox`), which answers
the events the webhooks stored, and the outbox deliverer (:mod:`handlers.outbox`), which sends due outbox
messages through the channel of the same name. See docs/reliability.md.

Blocking work (the model, the database) runs in a thread pool so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.config import Settings
from bot.dialogue import Dialogue
from bot.embedder import settings_embedder
from bot.protocol import APOLOGY
from bot.runtime import AssistantHolder
from bot.storage import Storage
from handlers.channels import Channel, configured_channels
from handlers.console.router import console_router
from handlers.http import SecurityHeaders, error_response
from handlers.inbox import InboxWorker, WebInbox
from handlers.outbox import OutboxDeliverer
from handlers.web import web_router
from indexer.batching import BatchingEmbedder

log = logging.getLogger(__name__)

NOT_FOUND = "Không tìm thấy địa chỉ này."


def serving_dialogue(settings: Settings) -> Dialogue:
    """The dialogue as served: the configured embedder wrapped in a :class:`BatchingEmbedder`."""
    serve = settings.serve
    store = Storage(settings, sqlite_synchronous=serve.sqlite_synchronous)
    embedder = BatchingEmbedder(settings_embedder(settings), max_batch=serve.embed_batch,
                                cache_size=serve.embed_cache_size)
    holder = AssistantHolder(settings, embedder=embedder)
    return Dialogue.from_settings(settings, store=store, holder=holder)


def create_app(settings: Settings, dialogue: Dialogue | None = None, *,
               channels: Sequence[Channel] | None = None) -> FastAPI:
    """The ASGI app. ``channels=None``: the configured ones (:func:`handlers.channels.configured_channels`)."""
    serve = settings.serve
    dialogue = dialogue or serving_dialogue(settings)
    store = dialogue.store
    holder = dialogue.holder
    active = list(configured_channels(settings, dialogue, store) if channels is None else channels)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.executor = ThreadPoolExecutor(max_workers=serve.threads(os.cpu_count() or 1),
                                                thread_name_prefix="dialogue")
        try:
            await asyncio.to_thread(lambda: holder.current)  # load the index and warm the model up
        except Exception:
            log.exception("the knowledge index could not be loaded at start-up")
        started: list[Channel] = []
        for ch in active:
            try:
                await ch.start()
                started.append(ch)
            except Exception:
                log.exception("channel %s failed to start; the other channels keep running", ch.name)
        deliverer = OutboxDeliverer.from_settings(store.outbox, {ch.name: ch for ch in started}, serve)
        inbox_channels: dict[str, Any] = {"web": WebInbox()}
        inbox_channels.update({ch.name: ch for ch in started if hasattr(ch, "incoming")})
        worker = InboxWorker.from_settings(store.inbox, dialogue, inbox_channels, deliverer, serve)
        for ch in started:
            attach = getattr(ch, "attach", None)
            if attach is not None:
                attach(worker.wake)
        stopping = asyncio.Event()
        tasks = [asyncio.create_task(_reload_loop(), name="index-reload"),
                 asyncio.create_task(worker.run(serve.inbox_poll_seconds, stopping), name="inbox"),
                 asyncio.create_task(deliverer.run(serve.outbox_poll_seconds, stopping), name="outbox")]
        app.state.tasks, app.state.deliverer, app.state.inbox_worker = tasks, deliverer, worker
        try:
            yield
        finally:
            # let the events being answered finish (what is cut short is taken again after a restart)
            stopping.set()
            await asyncio.wait(tasks[1:], timeout=10)
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
            await asyncio.sleep(serve.reload_seconds)
            try:
                if await asyncio.to_thread(holder.check_reload):
                    log.info("now serving knowledge index %s", holder.version)
            except Exception:
                log.exception("index reload failed; still serving %s", holder.version)

    app = FastAPI(title="Trợ lý ảo " + settings.department.dept_name, lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.dialogue = dialogue
    app.state.store = store
    app.state.holder = holder
    app.state.channels = active
    app.state.executor = None

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(404, NOT_FOUND)
        if exc.status_code == 405:
            return error_response(405, "Phương thức không được hỗ trợ ở địa chỉ này.")
        detail = exc.detail if isinstance(exc.detail, str) else APOLOGY
        return error_response(exc.status_code, detail)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, "Yêu cầu không hợp lệ.")

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, APOLOGY)

    app.add_middleware(SecurityHeaders)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        ok = await asyncio.to_thread(store.db.ping)
        body = {"status": "ok" if ok else "error", "index_version": holder.version, "db": ok,
                "channels": ["web", *(ch.name for ch in active)]}
        return JSONResponse(body, status_code=200 if ok else 503)

    app.include_router(web_router(settings, dialogue, serve))
    for ch in active:
        if ch.router is not None:
            app.include_router(ch.router)
    app.include_router(console_router(settings, holder, store), prefix="/console")
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
    """Factory for uvicorn (``--factory handlers.server:app_from_env``): settings from the environment."""
    from bot.config import get_settings

    setup_logging()
    return create_app(get_settings())
