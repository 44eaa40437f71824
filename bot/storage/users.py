"""Console accounts (officers and administrators) and their signed-in sessions.

Passwords arrive hashed and session ids arrive as the hash of the cookie token: hashing and token
generation belong to the console's security module, storage never sees a password or a cookie.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, select, update

from bot.storage.audit import record
from bot.storage.engine import Database
from bot.storage.models import ConsoleSession, User, utcnow

ROLES = ("officer", "admin")


class Users:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, username: str, password_hash: str, role: str = "officer", *, actor: str = "system") -> int:
        """Create an account; raises ``AlreadyExists`` when the name is taken."""
        if role not in ROLES:
            raise ValueError("role must be 'officer' or 'admin'")
        with self.db.unique(f"user {username}"), self.db.transaction() as s:
            row = User(username=username, password_hash=password_hash, role=role, active=True)
            s.add(row)
            s.flush()
            record(s, actor, "user.create", "user", username, {"role": role})
            return row.id

    def get(self, username: str) -> User | None:
        with self.db.transaction() as s:
            return s.scalar(select(User).where(User.username == username))

    def all(self) -> list[User]:
        with self.db.transaction() as s:
            return list(s.scalars(select(User).order_by(User.username)))

    def set_active(self, username: str, active: bool, *, actor: str) -> None:
        """Lock or unlock an account; locking also ends its sessions."""
        with self.db.transaction() as s:
            s.execute(update(User).where(User.username == username).values(active=active))
            if not active:
                s.execute(delete(ConsoleSession).where(ConsoleSession.username == username))
            record(s, actor, "user.activate" if active else "user.deactivate", "user", username, None)

    def set_password_hash(self, username: str, password_hash: str, *, actor: str,
                          action: str = "user.reset_password") -> None:
        """Replace a user's password and end all their sessions."""
        with self.db.transaction() as s:
            row = s.scalar(select(User).where(User.username == username))
            if row is None:
                raise KeyError(username)
            row.password_hash = password_hash
            s.execute(delete(ConsoleSession).where(ConsoleSession.username == username))
            record(s, actor, action, "user", username, None)

    def set_role(self, username: str, role: str, *, actor: str) -> None:
        if role not in ROLES:
            raise ValueError(role)
        with self.db.transaction() as s:
            s.execute(update(User).where(User.username == username).values(role=role))
            record(s, actor, "user.role", "user", username, {"role": role})


class SessionState(StrEnum):
    OK = "ok"
    MISSING = "missing"
    EXPIRED = "expired"


@dataclass(frozen=True)
class SessionUser:
    username: str
    role: str
    csrf: str
    session_id: str


class ConsoleSessions:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, session_id: str, username: str, csrf: str, ip: str | None) -> None:
        with self.db.transaction() as s:
            s.add(ConsoleSession(id=session_id, username=username, csrf_token=csrf, ip=(ip or "")[:64] or None))

    def load(self, session_id: str, *, idle: timedelta, max_age: timedelta,
             now: datetime | None = None) -> tuple[SessionState, SessionUser | None]:
        """The session's user; expired sessions (and those of locked users) are deleted. Touches
        ``last_seen_at`` at most every 10 seconds."""
        now = now or utcnow()
        with self.db.transaction() as s:
            row = s.get(ConsoleSession, session_id)
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
            return SessionState.OK, SessionUser(user.username, user.role, row.csrf_token, session_id)

    def end(self, session_id: str) -> None:
        with self.db.transaction() as s:
            s.execute(delete(ConsoleSession).where(ConsoleSession.id == session_id))

    def purge(self, *, idle: timedelta, max_age: timedelta) -> None:
        now = utcnow()
        with self.db.transaction() as s:
            s.execute(delete(ConsoleSession).where(
                (ConsoleSession.last_seen_at < now - idle) | (ConsoleSession.created_at < now - max_age)))
