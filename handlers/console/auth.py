"""Sign-in, sign-out, the user list (administrators) and the audit log."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse

from bot.storage import AlreadyExists
from bot.storage.audit import LOGIN_FAILED, LOGIN_OK, LOGIN_THROTTLED
from handlers.console.core import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    Console,
    ConsoleRoute,
    apply_headers,
    console_base,
    path_for,
)
from handlers.console.security import (
    ROLES,
    Principal,
    create_session,
    hash_password,
    needs_rehash,
    password_problem,
    same_token,
    set_password,
    verify_password,
)


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


AUDIT_PAGE = 50
"""Audit entries per page."""


def make_router(c: Console) -> APIRouter:
    r = APIRouter(route_class=ConsoleRoute)
    officer = Depends(c.guard("officer"))
    admin = Depends(c.guard("admin"))
    opts = c.options

    def login_page(request: Request, *, error: str | None = None, status: int = 200,
                   username: str = "") -> Response:
        token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
        notice = "Phiên làm việc đã hết hạn, vui lòng đăng nhập lại." if request.query_params.get("het_han") \
            else None
        resp = c.render(request, "login.html", {"login_csrf": token, "error": error, "notice": notice,
                                                "username": username}, status_code=status)
        resp.set_cookie(LOGIN_COOKIE, token, max_age=3600, path=console_base(request),
                        secure=opts.secure_cookies, httponly=True, samesite="strict")
        return resp

    @r.get("/login", name="console_login")
    def login_form(request: Request) -> Response:
        return login_page(request)

    @r.post("/login", name="console_login_post")
    def login(request: Request, username: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "",
              csrf_token: Annotated[str, Form()] = "") -> Response:
        username = username.strip()[:64]
        ip = _client_ip(request)
        if not same_token(csrf_token, request.cookies.get(LOGIN_COOKIE)):
            c.store.audit.log(username or "-", "auth.csrf_rejected", "path", request.url.path[:128], None)
            return login_page(request, error="Biểu mẫu đăng nhập đã hết hạn (mã chống giả mạo không khớp). "
                                             "Vui lòng thử lại.", status=403, username=username)
        if not username or not password:
            return login_page(request, error="Vui lòng nhập tên đăng nhập và mật khẩu.", status=400,
                              username=username)
        window = timedelta(minutes=opts.login_window_minutes)
        if c.store.audit.failed_logins(username, ip, window) >= opts.login_max_failures:
            c.store.audit.log(username, LOGIN_THROTTLED, "ip", ip, None)
            minutes = int(opts.login_window_minutes)
            return login_page(request, error=f"Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau {minutes} "
                                             "phút hoặc liên hệ quản trị viên.", status=429, username=username)
        user = c.store.users.get(username)
        ok = verify_password(user.password_hash if user else None, password)
        if not ok or user is None or not user.active:
            c.store.audit.log(username, LOGIN_FAILED, "ip", ip, None)
            return login_page(request, error="Tên đăng nhập hoặc mật khẩu không đúng.", status=401,
                              username=username)
        if needs_rehash(user.password_hash):
            set_password(c.store.users, username, password, actor=username)
        c.store.sessions.purge(idle=timedelta(minutes=opts.idle_minutes),
                               max_age=timedelta(hours=opts.max_session_hours))
        token, _csrf = create_session(c.store.sessions, user.username, ip)
        c.store.audit.log(user.username, LOGIN_OK, "ip", ip, None)
        resp = RedirectResponse(path_for(request, "console_home"), status_code=303)
        resp.set_cookie(SESSION_COOKIE, token, path=console_base(request), secure=opts.secure_cookies,
                        httponly=True, samesite=opts.same_site,
                        max_age=int(opts.max_session_hours * 3600))
        resp.delete_cookie(LOGIN_COOKIE, path=console_base(request))
        return apply_headers(resp)

    @r.post("/logout", name="console_logout")
    def logout(request: Request, user: Principal = officer) -> Response:
        c.store.sessions.end(user.session_id)
        c.store.audit.log(user.username, "auth.logout")
        resp = RedirectResponse(path_for(request, "console_login"), status_code=303)
        resp.delete_cookie(SESSION_COOKIE, path=console_base(request))
        return apply_headers(resp)

    @r.get("/", name="console_home")
    def home(request: Request, user: Principal = officer) -> Response:
        return c.redirect(request, "console_dashboard")

    # --- users (administrators) ---------------------------------------------------------------
    @r.get("/users", name="console_users")
    def users(request: Request, user: Principal = admin) -> Response:
        return c.render(request, "users.html", {"users": c.store.users.all(), "roles": ROLES,
                                                "min_len": opts.min_password_length})

    @r.post("/users", name="console_users_add")
    def users_add(request: Request, user: Principal = admin, username: Annotated[str, Form()] = "",
                  role: Annotated[str, Form()] = "officer", password: Annotated[str, Form()] = "") -> Response:
        username = username.strip()
        if not username or len(username) > 64 or role not in ROLES:
            return c.redirect(request, "console_users", error="Tên đăng nhập hoặc vai trò không hợp lệ.")
        problem = password_problem(password, opts.min_password_length)
        if problem:
            return c.redirect(request, "console_users", error=problem)
        try:
            c.store.users.add(username, hash_password(password), role, actor=user.username)
        except AlreadyExists:
            return c.redirect(request, "console_users", error=f"Tài khoản {username} đã có.")
        return c.redirect(request, "console_users", notice=f"Đã tạo tài khoản {username}.")

    @r.post("/users/{username}/update", name="console_users_update")
    def users_update(request: Request, username: str, user: Principal = admin,
                     action: Annotated[str, Form()] = "", role: Annotated[str, Form()] = "",
                     password: Annotated[str, Form()] = "") -> Response:
        if c.store.users.get(username) is None:
            return c.redirect(request, "console_users", error="Không có tài khoản này.")
        if username == user.username and action in ("deactivate", "role"):
            return c.redirect(request, "console_users", error="Không tự khóa hoặc đổi vai trò của chính mình.")
        if action == "deactivate":
            c.store.users.set_active(username, False, actor=user.username)
        elif action == "activate":
            c.store.users.set_active(username, True, actor=user.username)
        elif action == "role" and role in ROLES:
            c.store.users.set_role(username, role, actor=user.username)
        elif action == "password":
            problem = password_problem(password, opts.min_password_length)
            if problem:
                return c.redirect(request, "console_users", error=problem)
            set_password(c.store.users, username, password, actor=user.username)
        else:
            return c.redirect(request, "console_users", error="Thao tác không hợp lệ.")
        return c.redirect(request, "console_users", notice=f"Đã cập nhật tài khoản {username}.")

    # --- audit log ---------------------------------------------------------------------------------
    @r.get("/audit", name="console_audit")
    def audit(request: Request, user: Principal = admin, actor: str = "", action: str = "",
              trang: int = 1) -> Response:
        trang = max(1, trang)
        rows = c.store.audit.entries(actor=actor, action_prefix=action, limit=AUDIT_PAGE + 1,
                                     offset=(trang - 1) * AUDIT_PAGE)
        more = len(rows) > AUDIT_PAGE
        return c.render(request, "audit.html", {"rows": rows[:AUDIT_PAGE], "actor": actor, "action": action,
                                                "trang": trang, "more": more,
                                                "query": urlencode({"actor": actor, "action": action})})

    return r
