"""Passwords (argon2), session tokens (only their hash is stored), CSRF tokens."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from bot.storage.users import ROLES, ConsoleSessions, SessionState, Users

__all__ = ["ROLES", "ROLE_LABELS", "Principal", "SessionState", "create_session", "hash_password",
           "load_session", "needs_rehash", "password_problem", "same_token", "set_password", "token_digest",
           "verify_password"]

ROLE_LABELS = {"officer": "Cán bộ", "admin": "Quản trị"}

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Checked against when the user is unknown (made on first use: an argon2 hash costs ~0.15 s at start-up)."""
    return _hasher.hash("not-a-real-password-" + secrets.token_hex(8))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant-ish time: an unknown user is checked against a dummy hash too."""
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same_token(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


def password_problem(password: str, min_length: int) -> str | None:
    if len(password) < min_length:
        return f"Mật khẩu cần ít nhất {min_length} ký tự."
    if password.strip() != password or not password.strip():
        return "Mật khẩu không được bắt đầu hoặc kết thúc bằng khoảng trắng."
    return None


def set_password(users: Users, username: str, password: str, *, actor: str) -> None:
    """Replace a user's password (hashed) and end all their sessions."""
    users.set_password_hash(username, hash_password(password), actor=actor)


@dataclass(frozen=True)
class Principal:
    username: str
    role: str
    csrf: str
    session_id: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def role_label(self) -> str:
        return ROLE_LABELS.get(self.role, self.role)


def create_session(sessions: ConsoleSessions, username: str, ip: str | None) -> tuple[str, str]:
    """A new session; returns (cookie token, CSRF token). Only the token's hash is stored."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    sessions.create(token_digest(token), username, csrf, ip)
    return token, csrf


def load_session(sessions: ConsoleSessions, token: str | None, *, idle: timedelta, max_age: timedelta,
                 now: datetime | None = None) -> tuple[SessionState, Principal | None]:
    """The signed-in user of a cookie token (expired sessions are deleted)."""
    if not token:
        return SessionState.MISSING, None
    state, user = sessions.load(token_digest(token), idle=idle, max_age=max_age, now=now)
    if user is None:
        return state, None
    return state, Principal(user.username, user.role, user.csrf, user.session_id)
