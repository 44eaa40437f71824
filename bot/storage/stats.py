"""Aggregates for the dashboard: questions per day and outcome, feedback, topics, channels, latency."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.sql.elements import ColumnElement

from bot.storage.engine import Database
from bot.storage.models import ChatIdentity, Feedback, RequestLog

QUESTION_KINDS = ("answer", "choices", "fallback")
"""The outcomes of a question (the other kinds are lookups, small talk, follow-ups...)."""


@dataclass
class DayCounts:
    """One local day: questions per outcome, their total latency, feedback."""

    by_kind: dict[str, int] = field(default_factory=dict)
    latency_sum: float = 0.0
    latency_n: int = 0
    helpful: int = 0
    unhelpful: int = 0


@dataclass
class Activity:
    days: dict[date, DayCounts]
    topics: list[tuple[str, int]]
    """Most answered topics, most first (at most 10)."""
    channels: list[tuple[str, int]]
    """Questions per channel, most first."""
    other_messages: int
    latency_p95: float | None


def _day_expr(dialect: str, column: Any, offset: timedelta) -> ColumnElement[Any]:
    if dialect == "sqlite":
        return func.date(column, f"{offset.total_seconds() / 3600:+.2f} hours")
    return func.date(column + offset)


def _as_date(v: Any) -> date:
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    return date.fromisoformat(str(v)[:10])


class Stats:
    def __init__(self, db: Database) -> None:
        self.db = db

    def activity(self, since: datetime, until: datetime, offset: timedelta,
                 channels: Sequence[str] | None = None) -> Activity:
        """Counts between ``since`` and ``until`` (naive UTC), days in local time (UTC + ``offset``); only the
        traffic of ``channels`` when given (the dashboard leaves out the command line and tests by default)."""
        dialect = self.db.dialect
        in_range: tuple[Any, ...] = (RequestLog.created_at >= since, RequestLog.created_at < until)
        f_range: tuple[Any, ...] = (Feedback.created_at >= since, Feedback.created_at < until)
        if channels is not None:
            idents = select(ChatIdentity.id).where(ChatIdentity.channel.in_(list(channels)))
            in_range += (RequestLog.identity_id.in_(idents),)
            f_range += (Feedback.identity_id.in_(idents),)
        questions = RequestLog.kind.in_(QUESTION_KINDS)
        days: dict[date, DayCounts] = {}
        with self.db.transaction() as s:
            day = _day_expr(dialect, RequestLog.created_at, offset)
            for d, kind, n, lat_sum, lat_n in s.execute(
                    select(day, RequestLog.kind, func.count(), func.sum(RequestLog.latency_ms),
                           func.count(RequestLog.latency_ms))
                    .where(*in_range, questions).group_by(day, RequestLog.kind)):
                row = days.setdefault(_as_date(d), DayCounts())
                row.by_kind[str(kind)] = int(n)
                row.latency_sum += float(lat_sum or 0)
                row.latency_n += int(lat_n or 0)
            fday = _day_expr(dialect, Feedback.created_at, offset)
            for d, helpful, n in s.execute(
                    select(fday, Feedback.helpful, func.count())
                    .where(*f_range)
                    .group_by(fday, Feedback.helpful)):
                row = days.setdefault(_as_date(d), DayCounts())
                if helpful:
                    row.helpful += int(n)
                else:
                    row.unhelpful += int(n)
            topics = s.execute(
                select(RequestLog.topic, func.count())
                .where(*in_range, RequestLog.kind == "answer", RequestLog.topic.is_not(None))
                .group_by(RequestLog.topic).order_by(func.count().desc()).limit(10)).all()
            per_channel = s.execute(
                select(ChatIdentity.channel, func.count()).select_from(RequestLog)
                .join(ChatIdentity, ChatIdentity.id == RequestLog.identity_id)
                .where(*in_range, questions).group_by(ChatIdentity.channel)
                .order_by(func.count().desc())).all()
            other = s.scalar(select(func.count()).select_from(RequestLog)
                             .where(*in_range, RequestLog.kind.not_in(QUESTION_KINDS))) or 0
            n_lat = s.scalar(select(func.count(RequestLog.latency_ms)).where(*in_range, questions)) or 0
            p95 = None
            if n_lat:
                k = int(n_lat * 0.95)
                p95 = s.scalar(select(RequestLog.latency_ms)
                               .where(*in_range, questions, RequestLog.latency_ms.is_not(None))
                               .order_by(RequestLog.latency_ms).offset(min(k, n_lat - 1)).limit(1))
        return Activity(days=days, topics=[(str(t), int(n)) for t, n in topics],
                        channels=[(str(c), int(n)) for c, n in per_channel], other_messages=int(other),
                        latency_p95=float(p95) if p95 is not None else None)
