"""The console's shared context: settings, store, assistant holder, templates, guards."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from bot.config import Settings
from bot.runtime import AssistantHolder
from bot.store import Store
from handlers.console.config import ConsoleOptions
from handlers.console.security import ROLE_LABELS, Principal, SessionState, load_session, same_token

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))
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
    "new": "Mới", "answered": "Đã trả lời", "dismissed": "Đã bỏ qua", "in-progress": "Đang xử lý",
    "done": "Đã xong", "draft": "Bản nháp", "approved": "Đã duyệt", "rejected": "Đã từ chối",
}
KIND_LABELS = {"answer": "Trả lời", "choices": "Gợi ý lựa chọn", "fallback": "Chưa trả lời được",
               "dossier": "Tra cứu hồ sơ", "followup": "Gặp cán bộ", "smalltalk": "Chào hỏi",
               "info": "Thông tin", "error": "Lỗi"}
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

        return handler


def _url_fn(request: Request) -> Callable[..., str]:
    def url(route: str, /, **params: Any) -> str:
        return path_for(request, route, **params)
    return url


class Console:
    """Everything the console's pages need, shared by the route modules."""

    def __init__(self, settings: Settings, holder: AssistantHolder, store: Store,
                 options: ConsoleOptions) -> None:
        self.settings = settings
        self.holder = holder
        self.store = store
        self.options = options
        from handlers.console.grouping import EmbeddingCache
        from handlers.console.rebuild import Rebuilder

        self.embeddings = EmbeddingCache(holder)
        self._kb_cache: tuple[tuple[Any, ...], Any] | None = None
        self.rebuilder = Rebuilder(settings, holder, store, options)

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
                load_session, store, token, idle=timedelta(minutes=options.idle_minutes),
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
                    await run_in_threadpool(store.audit, user.username, "auth.csrf_rejected", "path",
                                            request.url.path[:128], None)
                    raise Forbidden("Biểu mẫu đã hết hạn hoặc không hợp lệ (thiếu mã chống giả mạo CSRF). "
                                    "Vui lòng tải lại trang và thử lại.")
            if role == "admin" and user.role != "admin":
                await run_in_threadpool(store.audit, user.username, "auth.forbidden", "path",
                                        request.url.path[:128], {"method": request.method})
                raise Forbidden("Chức năng này chỉ dành cho quản trị viên.")
            return user

        return dependency

    # --- rendering --------------------------------------------------------------------------------
    def render(self, request: Request, template: str, context: dict[str, Any] | None = None,
               status_code: int = 200) -> HTMLResponse:
        user: Principal | None = request.scope.get("console_user")
        ctx: dict[str, Any] = {
            "user": user, "url": _url_fn(request), "local": self.local, "dept_name": self.settings.dept_name,
            "status_labels": STATUS_LABELS, "kind_labels": KIND_LABELS, "channel_labels": CHANNEL_LABELS,
            "role_labels": ROLE_LABELS, "csrf": user.csrf if user else "",
            "flash": request.query_params.get("tb"), "error_flash": request.query_params.get("loi"),
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

    def knowledge(self) -> Any:
        """The validated knowledge base, re-read only when a file under it changed."""
        from indexer.knowledge import load_knowledge

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
            from indexer.knowledge import load_topics

            return load_topics(self.settings.knowledge_dir)
