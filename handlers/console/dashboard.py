"""Dashboard for the head of department: questions per day, outcome shares, topics, unanswered groups,
latency, feedback; SVG charts and CSV export."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import func, select
from sqlalchemy.sql.elements import ColumnElement

from bot.models import ChatIdentity, Feedback, RequestLog, utcnow
from handlers.console import charts
from handlers.console.core import CHANNEL_LABELS, Console, ConsoleRoute, apply_headers
from handlers.console.grouping import build_groups
from handlers.console.security import Principal

QUESTION_KINDS = ("answer", "choices", "fallback")
PERIODS = {"7": 7, "30": 30, "90": 90, "365": 365}


@dataclass
class Day:
    day: date
    answer: int = 0
    choices: int = 0
    fallback: int = 0
    latency_sum: float = 0.0
    latency_n: int = 0
    helpful: int = 0
    unhelpful: int = 0

    @property
    def questions(self) -> int:
        return self.answer + self.choices + self.fallback

    @property
    def latency(self) -> float | None:
        return self.latency_sum / self.latency_n if self.latency_n else None


@dataclass
class Stats:
    start: date
    end: date
    days: list[Day]
    topics: list[tuple[str, str, int]]
    channels: list[tuple[str, int]]
    other_messages: int
    latency_avg: float | None
    latency_p95: float | None
    groups: list[Any] = field(default_factory=list)

    def total(self, attr: str) -> int:
        return sum(getattr(d, attr) for d in self.days)

    @property
    def questions(self) -> int:
        return self.total("questions")

    def share(self, attr: str) -> float:
        q = self.questions
        return self.total(attr) / q * 100 if q else 0.0

    @property
    def feedback_total(self) -> int:
        return self.total("helpful") + self.total("unhelpful")

    @property
    def helpful_share(self) -> float | None:
        return self.total("helpful") / self.feedback_total * 100 if self.feedback_total else None


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


def period(c: Console, days: str, tu: str, den: str) -> tuple[date, date]:
    today = (utcnow() + c.utc_offset).date()
    try:
        start = date.fromisoformat(tu) if tu else None
        end = date.fromisoformat(den) if den else None
    except ValueError:
        start = end = None
    if start and end and start <= end:
        return start, min(end, start + timedelta(days=730))
    n = PERIODS.get(days, 30)
    return today - timedelta(days=n - 1), today


def compute(c: Console, start: date, end: date, *, with_groups: bool = True) -> Stats:
    off = c.utc_offset
    since = datetime.combine(start, datetime.min.time()) - off
    until = datetime.combine(end + timedelta(days=1), datetime.min.time()) - off
    dialect = c.store.engine.dialect.name
    days = {start + timedelta(days=i): Day(start + timedelta(days=i)) for i in range((end - start).days + 1)}
    in_range = (RequestLog.created_at >= since, RequestLog.created_at < until)
    with c.store.session() as s:
        day = _day_expr(dialect, RequestLog.created_at, off)
        for d, kind, n, lat_sum, lat_n in s.execute(
                select(day, RequestLog.kind, func.count(), func.sum(RequestLog.latency_ms),
                       func.count(RequestLog.latency_ms))
                .where(*in_range, RequestLog.kind.in_(QUESTION_KINDS)).group_by(day, RequestLog.kind)):
            row = days.get(_as_date(d))
            if row is None:
                continue
            setattr(row, kind, int(n))
            row.latency_sum += float(lat_sum or 0)
            row.latency_n += int(lat_n or 0)
        fday = _day_expr(dialect, Feedback.created_at, off)
        for d, helpful, n in s.execute(
                select(fday, Feedback.helpful, func.count())
                .where(Feedback.created_at >= since, Feedback.created_at < until).group_by(fday, Feedback.helpful)):
            row = days.get(_as_date(d))
            if row is not None:
                if helpful:
                    row.helpful += int(n)
                else:
                    row.unhelpful += int(n)
        topic_rows = s.execute(
            select(RequestLog.topic, func.count()).where(*in_range, RequestLog.kind == "answer",
                                                         RequestLog.topic.is_not(None))
            .group_by(RequestLog.topic).order_by(func.count().desc()).limit(10)).all()
        channels = s.execute(
            select(ChatIdentity.channel, func.count()).select_from(RequestLog)
            .join(ChatIdentity, ChatIdentity.id == RequestLog.identity_id)
            .where(*in_range, RequestLog.kind.in_(QUESTION_KINDS)).group_by(ChatIdentity.channel)
            .order_by(func.count().desc())).all()
        other = s.scalar(select(func.count()).select_from(RequestLog)
                         .where(*in_range, RequestLog.kind.not_in(QUESTION_KINDS))) or 0
        n_lat = s.scalar(select(func.count(RequestLog.latency_ms)).where(
            *in_range, RequestLog.kind.in_(QUESTION_KINDS))) or 0
        p95 = None
        if n_lat:
            k = int(n_lat * 0.95)
            p95 = s.scalar(select(RequestLog.latency_ms).where(
                *in_range, RequestLog.kind.in_(QUESTION_KINDS), RequestLog.latency_ms.is_not(None))
                .order_by(RequestLog.latency_ms).offset(min(k, n_lat - 1)).limit(1))
    titles = c.topics()
    rows = list(days.values())
    lat_n = sum(d.latency_n for d in rows)
    stats = Stats(
        start=start, end=end, days=rows,
        topics=[(str(t), titles.get(str(t), str(t)), int(n)) for t, n in topic_rows],
        channels=[(CHANNEL_LABELS.get(ch, ch), int(n)) for ch, n in channels],
        other_messages=int(other),
        latency_avg=sum(d.latency_sum for d in rows) / lat_n if lat_n else None,
        latency_p95=float(p95) if p95 is not None else None,
    )
    if with_groups:
        groups = build_groups(c.store, c.embeddings, c.settings.query_prefix, c.options.group_threshold,
                              status=None, since=since, until=until, limit=c.options.max_unanswered)
        stats.groups = groups[:10]
    return stats


def render_charts(stats: Stats) -> dict[str, Any]:
    labels = [d.day.strftime("%d/%m") for d in stats.days]
    col = charts.COLORS
    return {
        "per_day": charts.stacked_bars(labels, [
            ("Trả lời", [d.answer for d in stats.days], col["answer"]),
            ("Gợi ý lựa chọn", [d.choices for d in stats.days], col["choices"]),
            ("Chưa trả lời được", [d.fallback for d in stats.days], col["fallback"]),
        ], "Số câu hỏi mỗi ngày"),
        "shares": charts.share_bar([
            ("Trả lời", stats.total("answer"), col["answer"]),
            ("Gợi ý lựa chọn", stats.total("choices"), col["choices"]),
            ("Chưa trả lời được", stats.total("fallback"), col["fallback"]),
        ], "Tỷ lệ kết quả"),
        "topics": charts.hbars([(title, n) for _t, title, n in stats.topics], "Chủ đề được hỏi nhiều nhất"),
        "groups": charts.hbars([(g.representative.question, g.count) for g in stats.groups],
                               "Nhóm câu hỏi chưa trả lời được nhiều nhất", color=col["fallback"]),
        "feedback": charts.share_bar([
            ("Hữu ích", stats.total("helpful"), col["helpful"]),
            ("Chưa hữu ích", stats.total("unhelpful"), col["unhelpful"]),
        ], "Phản hồi của công dân"),
        "latency": charts.line(labels, [round(d.latency, 1) if d.latency is not None else None
                                        for d in stats.days], "Thời gian trả lời trung bình (ms)", unit=" ms"),
    }


def csv_response(stats: Stats, table: str) -> Response:
    buf = io.StringIO()
    w = csv.writer(buf)
    if table == "chu-de":
        w.writerow(["ma_chu_de", "chu_de", "so_cau_tra_loi"])
        for t, title, n in stats.topics:
            w.writerow([t, title, n])
    elif table == "chua-tra-loi":
        w.writerow(["cau_hoi_dai_dien", "so_cau_hoi", "so_cong_dan", "lan_dau", "lan_cuoi"])
        for g in stats.groups:
            w.writerow([g.representative.question, g.count, g.citizens, g.first.isoformat(timespec="minutes"),
                        g.last.isoformat(timespec="minutes")])
    else:
        table = "ngay"
        w.writerow(["ngay", "so_cau_hoi", "tra_loi", "goi_y_lua_chon", "chua_tra_loi_duoc", "ty_le_tra_loi_pct",
                    "thoi_gian_tb_ms", "phan_hoi_huu_ich", "phan_hoi_chua_huu_ich"])
        for d in stats.days:
            share = round(d.answer / d.questions * 100, 1) if d.questions else ""
            lat = round(d.latency, 1) if d.latency is not None else ""
            w.writerow([d.day.isoformat(), d.questions, d.answer, d.choices, d.fallback, share, lat,
                        d.helpful, d.unhelpful])
    name = f"tro-ly-{table}-{stats.start:%Y%m%d}-{stats.end:%Y%m%d}.csv"
    resp = Response("\ufeff" + buf.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return apply_headers(resp)


def make_router(c: Console) -> APIRouter:
    r = APIRouter(route_class=ConsoleRoute)
    officer = Depends(c.guard("officer"))

    @r.get("/dashboard", name="console_dashboard")
    def dashboard(request: Request, user: Principal = officer, days: str = "30", tu: str = "",
                  den: str = "") -> Response:
        start, end = period(c, days, tu, den)
        stats = compute(c, start, end)
        return c.render(request, "dashboard.html", {
            "stats": stats, "charts": render_charts(stats), "days": days if not (tu and den) else "",
            "tu": tu, "den": den, "periods": PERIODS,
            "query": {"days": days, "tu": tu, "den": den},
        })

    @r.get("/dashboard.csv", name="console_dashboard_csv")
    def export(request: Request, user: Principal = officer, days: str = "30", tu: str = "", den: str = "",
               bang: str = "ngay") -> Response:
        start, end = period(c, days, tu, den)
        stats = compute(c, start, end, with_groups=bang == "chua-tra-loi")
        c.store.audit(user.username, "dashboard.export", "csv", bang, {"from": str(start), "to": str(end)})
        return csv_response(stats, bang)

    return r
