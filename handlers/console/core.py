"""The console's shared context: settings, storage, assistant holder, knowledge administration, guards."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from bot.config import Settings
from bot.knowledge_admin import KnowledgeAdmin
from bot.protocol import ReplyKind
from bot.runtime import AssistantHolder
from bot.storage import Storage
from bot.storage.engine import DatabaseError
from handlers.console.grouping import EmbeddingCache
from handlers.console.rebuild import Rebuilder
from handlers.console.security import ROLE_LABELS, Principal, SessionState, load_session, same_token
from handlers.templates import TEMPLATES
from indexer.index import Progress
from indexer.knowledge import KnowledgeBase, load_knowledge, load_topics

log = logging.getLogger(__name__)

SESSION_COOKIE = "ldtbxh_console"
LOGIN_COOKIE = "ldtbxh_console_login"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
STATUS_LABELS = {
    "new": "Mới", "answered": "Đã trả lời", "dismissed": "Đã bỏ qua", "out_of_scope": "Ngoài thẩm quyền",
    "in-progress": "Đang xử lý",
    "done": "Đã xong", "draft": "Bản nháp", "approved": "Đã duyệt", "rejected": "Đã từ chối",
}
KIND_LABELS = {ReplyKind.ANSWER: "Trả lời", ReplyKind.CHOICES: "Gợi ý lựa chọn",
               ReplyKind.FALLBACK: "Chưa trả lời được", ReplyKind.DOCUMENT: "Trích văn bản",
               ReplyKind.CALCULATION: "Tính toán", ReplyKind.DOSSIER: "Tra cứu hồ sơ",
               ReplyKind.FOLLOWUP: "Gặp cán bộ", ReplyKind.SMALLTALK: "Chào hỏi", ReplyKind.INFO: "Thông tin",
               ReplyKind.ERROR: "Lỗi"}
"""How the console names each reply kind (every one of :class:`bot.protocol.ReplyKind`)."""
CHANNEL_LABELS = {"web": "Web", "telegram": "Telegram", "zalo": "Zalo", "cli": "Dòng lệnh"}


class LoginRequired(Exception):
    def __init__(self, expired: bool = False) -> None:
        self.expired = expired


class Forbidden(Exception):
    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def path_for(request: Request, route: str, /, **params: Any) -> str:
    return request.scope.get("root_path", "") + str(request.app.url_path_for(route, **params))


def console_base(request: Request) -> str:
    return path_for(request, "console_home").rstrip("/") or "/"


def apply_headers(response: Response) -> Response:
    for k, v in SECURITY_HEADERS.items():
        response.headers[k] = v
    return response


def error_page(request: Request, message: str, status: int) -> Response:
    resp = TEMPLATES.TemplateResponse(
        request, "error.html", {"message": message, "status": status, "url": _url_fn(request),
                                "user": request.scope.get("console_user")}, status_code=status)
    return apply_headers(resp)


def login_redirect(request: Request, expired: bool) -> Response:
    target = path_for(request, "console_login")
    if expired:
        target += "?het_han=1"
    resp = RedirectResponse(target, status_code=303)
    if expired:
        resp.delete_cookie(SESSION_COOKIE, path=console_base(request))
    return apply_headers(resp)


class ConsoleRoute(APIRoute):
    """Turns the console's guard exceptions into HTML pages (the host app's handlers answer JSON)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except LoginRequired as exc:
                return login_redirect(request, exc.expired)
            except Forbidden as exc:
                return error_page(request, exc.message, exc.status)
            except DatabaseError as exc:  # the database is down: say so, and give back what was typed
                log.error("console: database error on %s %s (%s)", request.method, request.url.path,
                          type(exc).__name__)
                return await unavailable_page(request)

        return handler


async def unavailable_page(request: Request) -> Response:
    """503 with the officer's typed text (a reply, notes) shown back, so that nothing typed is lost."""
    kept: list[tuple[str, str]] = []
    if request.method == "POST":
        try:
            form = await request.form()
            for name in ("reply", "notes", "answer", "question"):
                value = form.get(name)
                if isinstance(value, str) and value.strip():
                    kept.append((name, value))
        except Exception:  # the body may be gone: nothing to give back
            kept = []
    resp = TEMPLATES.TemplateResponse(
        request, "unavailable.html", {"kept": kept, "status": 503, "url": _url_fn(request),
                                      "user": request.scope.get("console_user")}, status_code=503)
    return apply_headers(resp)


def _url_fn(request: Request) -> Callable[..., str]:
    def url(route: str, /, **params: Any) -> str:
        return path_for(request, route, **params)
    return url


class Console:
    """Everything the console's pages need, shared by the route modules."""

    def __init__(self, settings: Settings, holder: AssistantHolder, store: Storage) -> None:
        self.settings = settings
        self.holder = holder
        self.store = store
        self.options = settings.console
        self.admin = KnowledgeAdmin(settings, holder.embedder, store)
        self.embeddings = EmbeddingCache(holder)
        self._kb_cache: tuple[tuple[Any, ...], KnowledgeBase] | None = None
        self.rebuilder = Rebuilder(self.admin, holder, reload_wait_seconds=self.options.reload_wait_seconds)
        self.doc_builder = Rebuilder(self.admin, holder, reload_wait_seconds=self.options.reload_wait_seconds,
                                     build=self._build_documents)
        """The documents index, built from the Văn bản page and published at once (as the CLI does)."""

    def _build_documents(self, actor: str, progress: Progress) -> Any:
        from indexer.documents.index import build_doc_index

        m = build_doc_index(self.settings.knowledge_dir, self.settings.index_root, self.holder.embedder,
                            passage_prefix=self.settings.passage_prefix, workers=1, progress=progress)
        self.store.audit.log(actor, "documents.build", "documents_index", m.version,
                             {"documents": m.documents, "passages": m.passages, "seconds": m.build_seconds})
        return m

    # --- time -------------------------------------------------------------------------------------
    @property
    def utc_offset(self) -> timedelta:
        return timedelta(hours=self.options.utc_offset_hours)

    def local(self, value: datetime | None, fmt: str = "%d/%m/%Y %H:%M") -> str:
        if value is None:
            return ""
        return (value + self.utc_offset).strftime(fmt)

    # --- guards -----------------------------------------------------------------------------------
    def guard(self, role: str = "officer") -> Callable[[Request], Coroutine[Any, Any, Principal]]:
        """A dependency: the signed-in user (else a redirect to sign-in), CSRF on POST, the role."""
        options = self.options
        store = self.store

        async def dependency(request: Request) -> Principal:
            token = request.cookies.get(SESSION_COOKIE)
            state, user = await run_in_threadpool(
                load_session, store.sessions, token, idle=timedelta(minutes=options.idle_minutes),
                max_age=timedelta(hours=options.max_session_hours))
            if user is None:
                raise LoginRequired(expired=state == SessionState.EXPIRED)
            request.scope["console_user"] = user
            if request.method not in ("GET", "HEAD", "OPTIONS"):
                sent = request.headers.get("x-csrf-token")
                if not sent:
                    ctype = request.headers.get("content-type", "")
                    if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
                        form = await request.form()
                        value = form.get("csrf_token")
                        sent = value if isinstance(value, str) else None
                if not same_token(sent, user.csrf):
                    await run_in_threadpool(store.audit.log, user.username, "auth.csrf_rejected", "path",
                                            request.url.path[:128], None)
                    raise Forbidden("Biểu mẫu đã hết hạn hoặc không hợp lệ (thiếu mã chống giả mạo CSRF). "
                                    "Vui lòng tải lại trang và thử lại.")
            if role == "admin" and user.role != "admin":
                await run_in_threadpool(store.audit.log, user.username, "auth.forbidden", "path",
                                        request.url.path[:128], {"method": request.method})
                raise Forbidden("Chức năng này chỉ dành cho quản trị viên.")
            return user

        return dependency

    def unread(self) -> dict[str, int]:
        """What waits for officers: new unanswered questions, new call-back requests (for the menu)."""
        try:
            return {"unanswered": self.store.requests.count_unanswered("new"),
                    "followups": self.store.followups.counts().get("new", 0)}
        except Exception:  # the menu never breaks a page
            log.warning("could not count the unread items", exc_info=True)
            return {}

    # --- rendering --------------------------------------------------------------------------------
    def render(self, request: Request, template: str, context: dict[str, Any] | None = None,
               status_code: int = 200) -> HTMLResponse:
        user: Principal | None = request.scope.get("console_user")
        ctx: dict[str, Any] = {
            "user": user, "url": _url_fn(request), "local": self.local, "dept_name": self.settings.department.dept_name,
            "status_labels": STATUS_LABELS, "kind_labels": KIND_LABELS, "channel_labels": CHANNEL_LABELS,
            "role_labels": ROLE_LABELS, "csrf": user.csrf if user else "",
            "flash": request.query_params.get("tb"), "error_flash": request.query_params.get("loi"),
            "unread": self.unread() if user else {}, "refresh_seconds": self.options.refresh_seconds,
        }
        ctx.update(context or {})
        resp = TEMPLATES.TemplateResponse(request, template, ctx, status_code=status_code)
        apply_headers(resp)
        return resp

    def redirect(self, request: Request, route: str, /, *, notice: str | None = None, error: str | None = None,
                 query: dict[str, str] | None = None, **params: Any) -> RedirectResponse:
        from urllib.parse import urlencode

        target = path_for(request, route, **params)
        q = dict(query or {})
        if notice:
            q["tb"] = notice
        if error:
            q["loi"] = error
        if q:
            target += "?" + urlencode(q)
        resp = RedirectResponse(target, status_code=303)
        apply_headers(resp)
        return resp

    def knowledge(self) -> KnowledgeBase:
        """The validated knowledge base, re-read only when a file under it changed."""
        root = self.settings.knowledge_dir
        sig = tuple(sorted((str(p), p.stat().st_mtime_ns, p.stat().st_size)
                           for p in root.rglob("*") if p.is_file()))
        cached = self._kb_cache
        if cached is not None and cached[0] == sig:
            return cached[1]
        kb = load_knowledge(root)
        self._kb_cache = (sig, kb)
        return kb

    def topics(self) -> dict[str, str]:
        try:
            return dict(self.holder.current.retriever.index.topics)
        except Exception:  # no index yet: read topics.yaml
            return load_topics(self.settings.knowledge_dir)
