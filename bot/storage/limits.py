"""Shared rate limits: counted actions in the database (``rate_events``), so that every server process
(and host) sees the same counts and a restart resets nothing.

Why the database and not Redis: it is already shared by every process that serves the same citizens,
already transactional, and the embedded default (SQLite, no Redis) must keep its limits. The counts are
small (an index on ``(key, created_at)``; events older than a day are purged by the inbox worker). A
check counts then records in one transaction; two processes racing on the same key may both pass at the
limit's edge (by one), which is acceptable for abuse limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from bot.storage.engine import Database
from bot.storage.models import RateEvent, utcnow


@dataclass(frozen=True)
class Limit:
    key: str
    limit: int
    """0: no limit"""
    window: timedelta


@dataclass(frozen=True)
class Refused:
    limit: Limit
    count: int
    retry_after: timedelta


class RateLimits:
    def __init__(self, db: Database) -> None:
        self.db = db

    def count(self, key: str, since: datetime) -> tuple[int, datetime | None]:
        with self.db.transaction() as s:
            n, oldest = s.execute(select(func.count(RateEvent.id), func.min(RateEvent.created_at))
                                  .where(RateEvent.key == key[:200], RateEvent.created_at >= since)).one()
            return int(n or 0), oldest

    def hit(self, *keys: str) -> None:
        now = utcnow()
        with self.db.transaction() as s:
            for k in keys:
                s.add(RateEvent(key=k[:200], created_at=now))

    def check(self, limits: Sequence[Limit], *, record: bool = True) -> Refused | None:
        """The first limit already reached (nothing recorded), or None (and, with ``record``, one event
        recorded for every key whose limit is not 0)."""
        limits = [lim for lim in limits if lim.limit > 0]  # 0: no limit, nothing to count
        if not limits:
            return None
        now = utcnow()
        with self.db.transaction() as s:
            for lim in limits:
                n, oldest = s.execute(select(func.count(RateEvent.id), func.min(RateEvent.created_at))
                                      .where(RateEvent.key == lim.key[:200],
                                             RateEvent.created_at >= now - lim.window)).one()
                if int(n or 0) >= lim.limit:
                    wait = (oldest + lim.window - now) if oldest is not None else lim.window
                    return Refused(lim, int(n), max(wait, timedelta(seconds=1)))
            if record:
                for lim in limits:
                    s.add(RateEvent(key=lim.key[:200], created_at=now))
            return None

    def purge(self, older_than: timedelta = timedelta(days=1)) -> int:
        with self.db.transaction() as s:
            res = s.execute(delete(RateEvent).where(RateEvent.created_at < utcnow() - older_than))
            return int(getattr(res, "rowcount", 0) or 0)


__all__ = ["Limit", "RateLimits", "Refused"]
