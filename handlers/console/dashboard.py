"""Dashboard for the head of department: questions per day, outcome shares, topics, unanswered groups,
latency, feedback; SVG charts and CSV export."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response

from bot.storage.models import utcnow
from bot.storage.stats import QUESTION_KINDS
from handlers.console import charts
from handlers.console.core import CHANNEL_LABELS, Console, ConsoleRoute, apply_headers
from handlers.console.grouping import build_groups
from handlers.console.security import Principal

PERIODS = {"7": 7, "30": 30, "90": 90, "365": 365}
CITIZEN_CHANNELS = ("web", "telegram", "zalo")
"""The channels citizens use; the rest (the command line, tests, evaluations) is left out unless asked for."""
SMALL_SAMPLE = 30
"""Below this many questions (or votes) a percentage is shown with a small-sample warning."""


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
    grain: str
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

    @property
    def small(self) -> bool:
        return self.questions < SMALL_SAMPLE

    @property
    def small_feedback(self) -> bool:
        return self.feedback_total < SMALL_SAMPLE

    def share(self, attr: str) -> float:
        q = self.questions
        return self.total(attr) / q * 100 if q else 0.0

    @property
    def feedback_total(self) -> int:
        return self.total("helpful") + self.total("unhelpful")

    @property
    def helpful_share(self) -> float | None:
        return self.total("helpful") / self.feedback_total * 100 if self.feedback_total else None


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


def channels_for(kenh: str, thu_nghiem: str) -> list[str] | None:
    """The channels counted: one chosen, or the citizens' ones (None: everything, tests included)."""
    if kenh:
        return [kenh]
    return None if thu_nghiem else list(CITIZEN_CHANNELS)


def bucket(rows: list[Day], grain: str) -> list[Day]:
    """Days summed by week (from Monday) or month for long ranges."""
    if grain == "day":
        return rows
    out: dict[date, Day] = {}
    for d in rows:
        key = d.day - timedelta(days=d.day.weekday()) if grain == "week" else d.day.replace(day=1)
        b = out.setdefault(key, Day(key))
        for attr in ("answer", "choices", "fallback", "latency_sum", "latency_n", "helpful", "unhelpful"):
            setattr(b, attr, getattr(b, attr) + getattr(d, attr))
    return list(out.values())


def compute(c: Console, start: date, end: date, *, with_groups: bool = True,
            channels: list[str] | None = None) -> Stats:
    off = c.utc_offset
    since = datetime.combine(start, datetime.min.time()) - off
    until = datetime.combine(end + timedelta(days=1), datetime.min.time()) - off
    activity = c.store.stats.activity(since, until, off, channels)
    rows = []
    for i in range((end - start).days + 1):
        day = start + timedelta(days=i)
        counts = activity.days.get(day)
        row = Day(day)
        if counts is not None:
            for kind in QUESTION_KINDS:
                setattr(row, kind, counts.by_kind.get(kind, 0))
            row.latency_sum, row.latency_n = counts.latency_sum, counts.latency_n
            row.helpful, row.unhelpful = counts.helpful, counts.unhelpful
        rows.append(row)
    titles = c.topics()
    lat_n = sum(d.latency_n for d in rows)
    span = (end - start).days + 1
    stats = Stats(
        start=start, end=end, grain="day" if span <= 62 else "week" if span <= 400 else "month", days=rows,
        topics=[(t, titles.get(t, t), n) for t, n in activity.topics],
        channels=[(CHANNEL_LABELS.get(ch, ch), n) for ch, n in activity.channels],
        other_messages=activity.other_messages,
        latency_avg=sum(d.latency_sum for d in rows) / lat_n if lat_n else None,
        latency_p95=activity.latency_p95,
    )
    if with_groups:
        groups = build_groups(c.store.requests, c.embeddings, c.settings.query_prefix, c.options.group_threshold,
                              status=None, since=since, until=until, limit=c.options.max_unanswered)
        if channels is not None:
            groups = [g for g in groups if any(i.channel in channels for i in g.items)]
        stats.groups = groups[:10]
    return stats


GRAIN_TITLES = {"day": "mỗi ngày", "week": "mỗi tuần", "month": "mỗi tháng"}


def trim_leading(rows: list[Day], keep: int = 7) -> list[Day]:
    """The days from the first one with activity (at least the last ``keep``): a young service's one day of
    questions is not drawn on a 30-day axis."""
    first = next((i for i, d in enumerate(rows) if d.questions or d.helpful or d.unhelpful), len(rows))
    return rows[min(first, max(0, len(rows) - keep)):]


def render_charts(stats: Stats) -> dict[str, Any]:
    periods = bucket(trim_leading(stats.days) if stats.grain == "day" else stats.days, stats.grain)
    fmt = {"day": "%d/%m", "week": "%d/%m", "month": "%m/%Y"}[stats.grain]
    labels = [d.day.strftime(fmt) for d in periods]
    col = charts.COLORS
    return {
        "per_day": charts.stacked_bars(labels, [
            ("Trả lời", [d.answer for d in periods], col["answer"]),
            ("Gợi ý lựa chọn", [d.choices for d in periods], col["choices"]),
            ("Chưa trả lời được", [d.fallback for d in periods], col["fallback"]),
        ], f"Số câu hỏi {GRAIN_TITLES[stats.grain]}"),
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
                                        for d in periods], "Thời gian trả lời trung bình (ms)", unit=" ms"),
    }


TABLE_NAMES = {"ngay": "Theo ngày", "chu-de": "Chủ đề", "chua-tra-loi": "Chưa trả lời được"}


def table_rows(c: Console, stats: Stats, table: str) -> tuple[list[str], list[list[Any]]]:
    """A table of the dashboard with Vietnamese headers; times in local time."""
    if table == "chu-de":
        return (["Mã chủ đề", "Chủ đề", "Số câu được trả lời"], [[t, title, n] for t, title, n in stats.topics])
    if table == "chua-tra-loi":
        return (["Câu hỏi đại diện", "Số câu hỏi", "Số công dân", "Lần đầu (giờ địa phương)",
                 "Lần cuối (giờ địa phương)"],
                [[g.representative.question, g.count, g.citizens, c.local(g.first), c.local(g.last)]
                 for g in stats.groups])
    rows = []
    for d in stats.days:
        share = round(d.answer / d.questions * 100, 1) if d.questions else ""
        lat = round(d.latency, 1) if d.latency is not None else ""
        rows.append([d.day.strftime("%d/%m/%Y"), d.questions, d.answer, d.choices, d.fallback, share, lat,
                     d.helpful, d.unhelpful])
    return (["Ngày", "Số câu hỏi", "Trả lời", "Gợi ý lựa chọn", "Chưa trả lời được", "Tỷ lệ trả lời (%)",
             "Thời gian trả lời TB (ms)", "Phản hồi hữu ích", "Phản hồi chưa hữu ích"], rows)


def csv_response(c: Console, stats: Stats, table: str) -> Response:
    table = table if table in TABLE_NAMES else "ngay"
    buf = io.StringIO()
    w = csv.writer(buf)
    header, rows = table_rows(c, stats, table)
    w.writerow(header)
    w.writerows(rows)
    name = f"tro-ly-{table}-{stats.start:%Y%m%d}-{stats.end:%Y%m%d}.csv"
    resp = Response("\ufeff" + buf.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return apply_headers(resp)


def xlsx_response(c: Console, stats: Stats, period_label: str) -> Response:
    """One workbook, a sheet per table, for a head of department to open in Excel."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    wb.remove(wb.active)
    for key, title in TABLE_NAMES.items():
        ws = wb.create_sheet(title)
        header, rows = table_rows(c, stats, key)
        ws.append([f"Trợ lý ảo: {title.lower()}, {period_label}"])
        ws["A1"].font = Font(bold=True)
        ws.append(header)
        for cell in ws[2]:
            cell.font = Font(bold=True)
        for row in rows:
            ws.append(row)
        for col in ws.columns:
            width = max(len(str(cell.value or "")) for cell in col[1:]) if len(col) > 1 else 10
            ws.column_dimensions[col[0].column_letter].width = min(max(width + 2, 10), 60)
    buf = io.BytesIO()
    wb.save(buf)
    name = f"tro-ly-{stats.start:%Y%m%d}-{stats.end:%Y%m%d}.xlsx"
    resp = Response(buf.getvalue(),
                    media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return apply_headers(resp)


def make_router(c: Console) -> APIRouter:
    r = APIRouter(route_class=ConsoleRoute)
    officer = Depends(c.guard("officer"))

    @r.get("/dashboard", name="console_dashboard")
    def dashboard(request: Request, user: Principal = officer, days: str = "30", tu: str = "",
                  den: str = "", kenh: str = "", thu_nghiem: str = "") -> Response:
        start, end = period(c, days, tu, den)
        kenh = kenh if kenh in CHANNEL_LABELS else ""
        stats = compute(c, start, end, channels=channels_for(kenh, thu_nghiem))
        deliveries = c.store.outbox.counts()
        query = {"days": days, "tu": tu, "den": den, "kenh": kenh, "thu_nghiem": thu_nghiem}
        return c.render(request, "dashboard.html", {
            "stats": stats, "charts": render_charts(stats), "days": days if not (tu and den) else "",
            "failed_deliveries": deliveries.get("failed", 0), "queued_deliveries": deliveries.get("pending", 0),
            "tu": tu, "den": den, "periods": PERIODS, "kenh": kenh, "thu_nghiem": thu_nghiem,
            "citizen_channels": CITIZEN_CHANNELS, "small_sample": SMALL_SAMPLE,
            "query": urlencode(query),
        })

    @r.get("/dashboard.csv", name="console_dashboard_csv")
    def export(request: Request, user: Principal = officer, days: str = "30", tu: str = "", den: str = "",
               bang: str = "ngay", kenh: str = "", thu_nghiem: str = "") -> Response:
        start, end = period(c, days, tu, den)
        kenh = kenh if kenh in CHANNEL_LABELS else ""
        stats = compute(c, start, end, with_groups=bang == "chua-tra-loi", channels=channels_for(kenh, thu_nghiem))
        c.store.audit.log(user.username, "dashboard.export", "csv", bang, {"from": str(start), "to": str(end)})
        return csv_response(c, stats, bang)

    @r.get("/dashboard.xlsx", name="console_dashboard_xlsx")
    def export_xlsx(request: Request, user: Principal = officer, days: str = "30", tu: str = "", den: str = "",
                    kenh: str = "", thu_nghiem: str = "") -> Response:
        start, end = period(c, days, tu, den)
        kenh = kenh if kenh in CHANNEL_LABELS else ""
        stats = compute(c, start, end, channels=channels_for(kenh, thu_nghiem))
        c.store.audit.log(user.username, "dashboard.export", "xlsx", "all", {"from": str(start), "to": str(end)})
        label = f"từ {start:%d/%m/%Y} đến {end:%d/%m/%Y}" + (f", kênh {CHANNEL_LABELS[kenh]}" if kenh else "")
        return xlsx_response(c, stats, label)

    return r
