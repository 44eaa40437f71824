"""The audit log: what officers, administrators and the command line did."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.storage.engine import Database
from bot.storage.models import AuditLog, utcnow

LOGIN_OK = "auth.login"
LOGIN_FAILED = "auth.login_failed"
LOGIN_THROTTLED = "auth.login_throttled"


def record(s: Session, actor: str, action: str, target_type: str | None = None, target_id: object = None,
           details: dict[str, Any] | None = None) -> None:
    """Add an audit row inside the caller's transaction (so the action and its record commit together)."""
    s.add(AuditLog(actor=actor[:64], action=action, target_type=target_type,
                   target_id=None if target_id is None else str(target_id)[:128], details=details))


class Audit:
    def __init__(self, db: Database) -> None:
        self.db = db

    def log(self, actor: str, action: str, target_type: str | None = None, target_id: object = None,
            details: dict[str, Any] | None = None) -> None:
        """Record an action in its own transaction. Keep personal data out of ``details``."""
        with self.db.transaction() as s:
            record(s, actor, action, target_type, target_id, details)

    def entries(self, *, actor: str = "", action_prefix: str = "", limit: int = 300,
                offset: int = 0) -> list[AuditLog]:
        """The newest entries, optionally of one actor and/or whose action starts with ``action_prefix``."""
        q = select(AuditLog).order_by(AuditLog.id.desc()).offset(offset).limit(limit)
        if actor:
            q = q.where(AuditLog.actor == actor)
        if action_prefix:
            q = q.where(AuditLog.action.startswith(action_prefix))
        with self.db.transaction() as s:
            return list(s.scalars(q))

    def failed_logins(self, username: str, ip: str, window: timedelta) -> int:
        """Failed sign-ins for this user name from this address within ``window`` since the last success
        (counted here, so every server process sees the same numbers)."""
        since = utcnow() - window
        actor, target = username[:64], ip[:128]
        with self.db.transaction() as s:
            last_ok = s.scalar(select(func.max(AuditLog.created_at)).where(
                AuditLog.action == LOGIN_OK, AuditLog.actor == actor, AuditLog.target_id == target))
            if last_ok is not None and last_ok > since:
                since = last_ok
            return int(s.scalar(select(func.count(AuditLog.id)).where(
                AuditLog.action == LOGIN_FAILED, AuditLog.actor == actor, AuditLog.target_id == target,
                AuditLog.created_at >= since)) or 0)
