"""The queue of questions the assistant declined or answered badly, grouped; replies and drafts."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response

from handlers.console.core import CHANNEL_LABELS, Console, ConsoleRoute
from handlers.console.grouping import build_groups, candidates_for, load_items
from handlers.console.replies import (
    MAX_REPLY_CHARS,
    create_draft,
    dismiss_unanswered,
    reply_to_unanswered,
)
from handlers.console.security import Principal
from indexer.knowledge import PLACEHOLDER_RE, render

SOURCE_LABELS = {"fallback": "Trợ lý từ chối trả lời", "feedback": "Công dân bấm \"Chưa hữu ích\""}
MAX_GROUPS_SHOWN = 100


def parse_ids(raw: str) -> list[int]:
    out = []
    for part in raw.replace(" ", ",").split(","):
        if part.strip().isdigit():
            out.append(int(part))
    return sorted(set(out))


def parse_day(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        return None


def make_router(c: Console) -> APIRouter:
    r = APIRouter(route_class=ConsoleRoute)
    officer = Depends(c.guard("officer"))

    @r.get("/unanswered", name="console_unanswered")
    def queue(request: Request, user: Principal = officer, status: str = "new", channel: str = "",
              source: str = "", tu: str = "", den: str = "", q: str = "") -> Response:
        status = status if status in ("new", "answered", "dismissed", "all") else "new"
        since, until = parse_day(tu), parse_day(den)
        off = c.utc_offset
        groups = build_groups(
            c.store, c.embeddings, c.settings.query_prefix, c.options.group_threshold,
            status=None if status == "all" else status, channel=channel or None,
            source=source if source in SOURCE_LABELS else None,
            since=since - off if since else None, until=until + timedelta(days=1) - off if until else None,
            search=q or None, limit=c.options.max_unanswered)
        shown = groups[:MAX_GROUPS_SHOWN]
        for g in shown:
            g.candidates = candidates_for(c.holder, g.representative.text)
        topics = c.topics()
        return c.render(request, "unanswered.html", {
            "groups": shown, "total_groups": len(groups), "total_questions": sum(g.count for g in groups),
            "status": status, "channel": channel, "source": source, "tu": tu, "den": den, "q": q,
            "source_labels": SOURCE_LABELS, "channels": CHANNEL_LABELS, "topics": topics,
            "max_reply": MAX_REPLY_CHARS, "topic_floor": c.settings.choice_threshold,
        })

    @r.post("/unanswered/reply", name="console_unanswered_reply")
    def reply(request: Request, user: Principal = officer, ids: Annotated[str, Form()] = "",
              reply: Annotated[str, Form()] = "", topic: Annotated[str, Form()] = "",
              action: Annotated[str, Form()] = "reply") -> Response:
        id_list = parse_ids(ids)
        if not id_list:
            return c.redirect(request, "console_unanswered", error="Chưa chọn câu hỏi nào.")
        if action == "dismiss":
            n = dismiss_unanswered(c.store, id_list, actor=user.username)
            return c.redirect(request, "console_unanswered", notice=f"Đã bỏ qua {n} câu hỏi.")
        items = load_items(c.store, status=None, ids=id_list, limit=len(id_list))
        topics = c.topics()
        topic = topic if topic in topics else ""
        if action == "draft":  # from an already answered group
            answered = [i for i in items if i.officer_reply]
            if not answered:
                return c.redirect(request, "console_unanswered", error="Nhóm này chưa có câu trả lời của cán bộ.")
            draft_id = _draft(c, answered, answered[0].officer_reply or "", topic, user.username)
            return c.redirect(request, "console_unanswered", notice=f"Đã tạo bản nháp hỏi–đáp số {draft_id}.",
                              query={"status": "answered"})
        reply = reply.strip().replace("\r\n", "\n")
        if not reply:
            return c.redirect(request, "console_unanswered", error="Câu trả lời đang trống.")
        if len(reply) > MAX_REPLY_CHARS:
            return c.redirect(request, "console_unanswered",
                              error=f"Câu trả lời dài {len(reply)} ký tự; tối đa {MAX_REPLY_CHARS}.")
        unknown = [p for p in PLACEHOLDER_RE.findall(reply) if p not in c.settings.department()]
        if unknown:
            return c.redirect(request, "console_unanswered",
                              error="Không dùng được ô thay thế: " + ", ".join("{" + u + "}" for u in unknown))
        result = reply_to_unanswered(c.store, id_list, reply, actor=user.username,
                                     dept_name=c.settings.dept_name,
                                     rendered=render(reply, c.settings.department()))
        notice = (f"Đã gửi trả lời tới {result.messages} công dân ({len(result.answered)} câu hỏi) "
                  "qua kênh họ đã dùng.")
        if result.skipped:
            notice += f" {len(result.skipped)} câu hỏi đã được người khác xử lý nên bỏ qua."
        if action == "reply_draft" and result.answered:
            draft_id = _draft(c, [i for i in items if i.id in result.answered], reply, topic, user.username)
            notice += f" Đã tạo bản nháp hỏi–đáp số {draft_id} chờ quản trị viên duyệt."
        return c.redirect(request, "console_unanswered", notice=notice)

    return r


def _draft(c: Console, items: list, answer: str, topic: str, author: str) -> int:
    counts = Counter(i.question.strip() for i in items)
    wordings: dict[str, str] = {}
    for q, _n in counts.most_common():
        wordings.setdefault(q.casefold().rstrip("?. "), q)
    questions = list(wordings.values())
    if not topic:
        cands = candidates_for(c.holder, items[0].text, k=1)
        topic = cands[0]["topic"] if cands and cands[0]["score"] >= c.settings.choice_threshold else ""
    return create_draft(c.store, question=questions[0], paraphrases=questions[1:11], answer=answer,
                        topic=topic or None, author=author, unanswered_ids=[i.id for i in items])
