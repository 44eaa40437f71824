"""Passwords (argon2), sessions stored in the database, CSRF tokens and sign-in throttling."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select, update

from bot.models import AuditLog, ConsoleSession, User, utcnow
from bot.store import Store

ROLES = ("officer", "admin")
ROLE_LABELS = {"officer": "Cán bộ", "admin": "Quản trị"}

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not-a-real-password-" + secrets.token_hex(8))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant-ish time: an unknown user is checked against a dummy hash too."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
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


# --- users ------------------------------------------------------------------------------------------

def password_problem(password: str, min_length: int) -> str | None:
    if len(password) < min_length:
        return f"Mật khẩu cần ít nhất {min_length} ký tự."
    if password.strip() != password or not password.strip():
        return "Mật khẩu không được bắt đầu hoặc kết thúc bằng khoảng trắng."
    return None


def set_password(store: Store, username: str, password: str, *, actor: str) -> None:
    """Replace a user's password and end all their sessions."""
    with store.session() as s:
        row = s.scalar(select(User).where(User.username == username))
        if row is None:
            raise KeyError(username)
        row.password_hash = hash_password(password)
        s.execute(delete(ConsoleSession).where(ConsoleSession.username == username))
        store._audit(s, actor, "user.reset_password", "user", username, None)


def list_users(store: Store) -> list[User]:
    with store.session() as s:
        return list(s.scalars(select(User).order_by(User.username)))


def set_role(store: Store, username: str, role: str, *, actor: str) -> None:
    if role not in ROLES:
        raise ValueError(role)
    with store.session() as s:
        s.execute(update(User).where(User.username == username).values(role=role))
        store._audit(s, actor, "user.role", "user", username, {"role": role})


# --- sessions ---------------------------------------------------------------------------------------

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


def create_session(store: Store, username: str, ip: str | None) -> tuple[str, str]:
    """A new session; returns (cookie token, CSRF token). Only the token's hash is stored."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    with store.session() as s:
        s.add(ConsoleSession(id=token_digest(token), username=username, csrf_token=csrf,
                             ip=(ip or "")[:64] or None))
    return token, csrf


class SessionState:
    OK = "ok"
    MISSING = "missing"
    EXPIRED = "expired"


def load_session(store: Store, token: str | None, *, idle: timedelta, max_age: timedelta,
                 now: datetime | None = None) -> tuple[str, Principal | None]:
    """Look a cookie token up; expired sessions are deleted. Touches ``last_seen_at``."""
    if not token:
        return SessionState.MISSING, None
    now = now or utcnow()
    sid = token_digest(token)
    with store.session() as s:
        row = s.get(ConsoleSession, sid)
        if row is None:
            return SessionState.MISSING, None
        if row.last_seen_at < now - idle or row.created_at < now - max_age:
            s.delete(row)
            return SessionState.EXPIRED, None
        user = s.scalar(select(User).where(User.username == row.username))
        if user is None or not user.active:
            s.delete(row)
            return SessionState.MISSING, None
        if (now - row.last_seen_at).total_seconds() > 10:
            row.last_seen_at = now
        return SessionState.OK, Principal(user.username, user.role, row.csrf_token, sid)


def end_session(store: Store, session_id: str) -> None:
    with store.session() as s:
        s.execute(delete(ConsoleSession).where(ConsoleSession.id == session_id))


def end_user_sessions(store: Store, username: str) -> None:
    with store.session() as s:
        s.execute(delete(ConsoleSession).where(ConsoleSession.username == username))


def purge_sessions(store: Store, *, idle: timedelta, max_age: timedelta) -> None:
    now = utcnow()
    with store.session() as s:
        s.execute(delete(ConsoleSession).where(
            (ConsoleSession.last_seen_at < now - idle) | (ConsoleSession.created_at < now - max_age)))


# --- sign-in throttling (counted in the audit log, so every process sees the same numbers) ----------

LOGIN_OK = "auth.login"
LOGIN_FAILED = "auth.login_failed"
LOGIN_THROTTLED = "auth.login_throttled"


def recent_failures(store: Store, username: str, ip: str, window: timedelta) -> int:
    """Failed sign-ins for this user name from this address within ``window`` since the last success."""
    since = utcnow() - window
    actor = username[:64]
    with store.session() as s:
        last_ok = s.scalar(select(func.max(AuditLog.created_at)).where(
            AuditLog.action == LOGIN_OK, AuditLog.actor == actor, AuditLog.target_id == ip[:128]))
        if last_ok is not None and last_ok > since:
            since = last_ok
        return int(s.scalar(select(func.count(AuditLog.id)).where(
            AuditLog.action == LOGIN_FAILED, AuditLog.actor == actor, AuditLog.target_id == ip[:128],
            AuditLog.created_at >= since)) or 0)
