"""The queue of questions the assistant declined or answered badly, grouped; replies and drafts."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import JSONResponse

from bot.storage.requests import UnansweredItem
from handlers.console.core import CHANNEL_LABELS, Console, ConsoleRoute, apply_headers
from handlers.console.grouping import build_groups, candidates_for, document_suggestion
from handlers.console.replies import MAX_REPLY_CHARS, citizen_message
from handlers.console.security import Principal
from indexer.placeholders import (
    GENERIC_DEPT_NAME,
    PLACEHOLDER_RE,
    PLACEHOLDERS,
    drop_unconfigured,
    is_configured,
    render,
)

log = logging.getLogger(__name__)

TOPIC_PREFILL_MIN = 0.8
"""A group's topic is pre-filled only when the assistant gives it at least this probability (otherwise the
officer picks one: a wrong pre-filled topic is worse than none)."""
SET_ASIDE = {"dismiss": ("dismissed", "Đã bỏ qua {n} câu hỏi."),
             "out_of_scope": ("out_of_scope", "Đã đánh dấu {n} câu hỏi ngoài thẩm quyền.")}
"""Bulk actions that set questions aside (undoable): action -> (status, notice)."""

DELIVERY_LABELS = {"pending": "Đang chờ gửi", "sent": "Đã gửi", "failed": "Gửi thất bại"}

SOURCE_LABELS = {"fallback": "Trợ lý từ chối trả lời", "feedback": "Công dân bấm \"Chưa hữu ích\"",
                 "document": "Đã trả lời bằng trích dẫn văn bản"}
MAX_GROUPS_SHOWN = 100


def parse_ids(raw: str | list[str]) -> list[int]:
    out = []
    for chunk in ([raw] if isinstance(raw, str) else raw):
        for part in chunk.replace(" ", ",").split(","):
            if part.strip().isdigit():
                out.append(int(part))
    return sorted(set(out))


def masked_chat(chat_id: str | None) -> str:
    """A chat as officers may see it in a list: its last four characters."""
    return "…" + chat_id[-4:] if chat_id and len(chat_id) > 4 else (chat_id or "?")


def parse_day(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        return None


def active_users(c: Console) -> list[str]:
    """The console users a question can be assigned to (active accounts), by name."""
    return sorted(u.username for u in c.store.users.all() if u.active)


def make_router(c: Console) -> APIRouter:
    r = APIRouter(route_class=ConsoleRoute)
    officer = Depends(c.guard("officer"))

    @r.get("/unanswered", name="console_unanswered")
    def queue(request: Request, user: Principal = officer, status: str = "new", channel: str = "",
              source: str = "", tu: str = "", den: str = "", q: str = "", cua_toi: str = "") -> Response:
        status = status if status in ("new", "answered", "dismissed", "all") else "new"
        since, until = parse_day(tu), parse_day(den)
        off = c.utc_offset
        groups = build_groups(
            c.store.requests, c.embeddings, c.settings.query_prefix, c.options.group_threshold,
            status=None if status == "all" else status, channel=channel or None,
            source=source if source in SOURCE_LABELS else None,
            since=since - off if since else None, until=until + timedelta(days=1) - off if until else None,
            search=q or None, assigned_to=user.username if cua_toi else None, limit=c.options.max_unanswered)
        shown = groups[:MAX_GROUPS_SHOWN]
        assistant = c.holder.current if c.holder.version else None
        answers: dict[str, dict[str, str]] = {}
        clauses: dict[str, dict[str, Any]] = {}
        for g in shown:
            g.candidates = candidates_for(c.holder, g.representative.text)
            if "document" in g.sources and g.items[0].status == "new":
                clause = document_suggestion(c.holder, g.representative.text)
                if clause is not None:
                    clauses[g.key] = clause
            for i in g.items:
                if i.answered_entry and i.answered_entry not in answers and assistant is not None:
                    e = assistant.entry(i.answered_entry) or {}
                    answers[i.answered_entry] = {"title": e.get("title", i.answered_entry),
                                                 "answer": assistant.render(e.get("answer", ""))}
        topics = c.topics()
        deliveries = c.store.outbox.for_unanswered([i for g in shown for i in g.ids])
        undo = ",".join(str(i) for i in parse_ids(request.query_params.get("hoantac", "")))
        return c.render(request, "unanswered.html", {
            "groups": shown, "deliveries": deliveries, "delivery_labels": DELIVERY_LABELS, "total_groups": len(groups), "total_questions": sum(g.count for g in groups),
            "status": status, "channel": channel, "source": source, "tu": tu, "den": den, "q": q,
            "source_labels": SOURCE_LABELS, "channels": CHANNEL_LABELS, "topics": topics,
            "max_reply": MAX_REPLY_CHARS, "topic_floor": TOPIC_PREFILL_MIN, "answers": answers, "undo": undo,
            "cua_toi": cua_toi, "users": active_users(c), "me": user.username, "clauses": clauses,
        })

    @r.get("/unread", name="console_unread")
    def unread(request: Request, user: Principal = officer) -> Response:
        return apply_headers(JSONResponse(c.unread(), headers={"Cache-Control": "no-store"}))

    @r.post("/unanswered/reply", name="console_unanswered_reply")
    def reply(request: Request, user: Principal = officer, ids: Annotated[list[str] | None, Form()] = None,
              reply: Annotated[str, Form()] = "", topic: Annotated[str, Form()] = "",
              action: Annotated[str, Form()] = "reply", confirmed: Annotated[str, Form()] = "",
              assignee: Annotated[str, Form()] = "") -> Response:
        id_list = parse_ids(ids or [])
        if not id_list:
            return c.redirect(request, "console_unanswered", error="Chưa chọn câu hỏi nào.")
        if action in SET_ASIDE:
            new_status, said = SET_ASIDE[action]
            done = c.store.requests.dismiss(id_list, actor=user.username, status=new_status)
            return c.redirect(request, "console_unanswered", notice=said.format(n=len(done)),
                              query={"hoantac": ",".join(map(str, done))} if done else None)
        if action == "undo":
            n = c.store.requests.undo_dismiss(id_list, actor=user.username)
            return c.redirect(request, "console_unanswered", notice=f"Đã đưa {n} câu hỏi trở lại hàng chờ.")
        if action == "assign":
            assignee = assignee.strip()
            if assignee and assignee not in active_users(c):
                return c.redirect(request, "console_unanswered", error="Người được giao không có hoặc đã bị khóa.")
            done = c.store.requests.assign(id_list, assignee or None, actor=user.username)
            said = (f"Đã giao {len(done)} câu hỏi cho {assignee}." if assignee
                    else f"Đã bỏ giao {len(done)} câu hỏi.")
            if len(done) < len(id_list):
                said += f" {len(id_list) - len(done)} câu hỏi không đổi (đã giao sẵn hoặc không còn ở hàng chờ)."
            return c.redirect(request, "console_unanswered", notice=said)
        if action == "split":
            label = c.store.requests.split(id_list, actor=user.username)
            return c.redirect(request, "console_unanswered",
                              notice=f"Đã tách {len(id_list)} câu hỏi thành nhóm riêng." if label else None)
        items = c.store.requests.queue(status=None, ids=id_list, limit=len(id_list))
        topics = c.topics()
        topic = topic if topic in topics else ""
        if action == "draft":  # from an already answered group
            answered = [i for i in items if i.officer_reply]
            if not answered:
                return c.redirect(request, "console_unanswered", error="Nhóm này chưa có câu trả lời của cán bộ.")
            draft_id, created = _draft(c, answered, answered[0].officer_reply or "", topic, user.username)
            notice = (f"Đã tạo bản nháp hỏi–đáp số {draft_id}." if created
                      else f"Nhóm này đã có bản nháp hỏi–đáp số {draft_id}; không tạo thêm.")
            return c.redirect(request, "console_unanswered", notice=notice, query={"status": "answered"})
        reply = reply.strip().replace("\r\n", "\n")
        if not reply:
            return c.redirect(request, "console_unanswered", error="Câu trả lời đang trống.")
        if len(reply) > MAX_REPLY_CHARS:
            return c.redirect(request, "console_unanswered",
                              error=f"Câu trả lời dài {len(reply)} ký tự; tối đa {MAX_REPLY_CHARS}.")
        unknown = [p for p in PLACEHOLDER_RE.findall(reply) if p not in PLACEHOLDERS]
        if unknown:
            return c.redirect(request, "console_unanswered",
                              error="Không dùng được ô thay thế: " + ", ".join("{" + u + "}" for u in unknown))
        dept = c.settings.department
        values = dept.placeholders()
        rendered = drop_unconfigured(render(reply, values), values)
        if confirmed != "1":  # first the list of who will receive it
            recipients: dict[tuple[str, str], list[UnansweredItem]] = {}
            for i in items:
                if i.status == "new" and i.channel and i.chat_id:
                    recipients.setdefault((i.channel, i.chat_id), []).append(i)
            rows = [{"channel": ch, "chat": masked_chat(chat), "questions": [x.question for x in its],
                     "at": max(x.created_at for x in its)} for (ch, chat), its in recipients.items()]
            return c.render(request, "unanswered_confirm.html", {
                "rows": rows, "ids": ",".join(map(str, id_list)), "reply": reply, "rendered": rendered,
                "topic": topic, "topic_title": topics.get(topic, ""), "action": action,
                "skipped": sum(1 for i in items if i.status != "new")})
        name = dept.dept_name if is_configured(dept.dept_name) else GENERIC_DEPT_NAME
        try:
            result = c.store.requests.reply(id_list, reply, actor=user.username,
                                            message=lambda question: citizen_message(name, question, rendered))
        except Exception as exc:  # the database is down: say so, and give the officer their text back
            log.error("console: an officer's reply could not be stored (%s)", type(exc).__name__)
            return c.render(request, "reply_failed.html", {"reply": reply, "ids": ",".join(map(str, id_list)),
                                                           "topic": topic}, status_code=503)
        notice = (f"Đã xếp hàng gửi trả lời tới {result.messages} công dân ({len(result.answered)} câu hỏi) "
                  "qua kênh họ đã dùng; trạng thái gửi tới từng người hiện ở mục \"Đã trả lời\".")
        if result.skipped:
            notice += f" {len(result.skipped)} câu hỏi đã được người khác xử lý nên bỏ qua."
        if action == "reply_draft" and result.answered:
            draft_id, created = _draft(c, [i for i in items if i.id in result.answered], reply, topic, user.username)
            notice += (f" Đã tạo bản nháp hỏi–đáp số {draft_id} chờ quản trị viên duyệt." if created
                       else f" Nhóm này đã có bản nháp hỏi–đáp số {draft_id}.")
        return c.redirect(request, "console_unanswered", notice=notice)

    @r.post("/outbox/{outbox_id}/retry", name="console_outbox_retry")
    def retry(request: Request, outbox_id: int, user: Principal = officer,
              back: Annotated[str, Form()] = "") -> Response:
        ok = c.store.outbox.retry(outbox_id)
        if ok:
            c.store.audit.log(user.username, "outbox.retry", "outbox", str(outbox_id), None)
        notice = "Đã xếp hàng gửi lại tin nhắn." if ok else None
        error = None if ok else "Tin nhắn này không ở trạng thái gửi thất bại."
        if back.isdigit():
            return c.redirect(request, "console_followup", fid=int(back), notice=notice, error=error)
        return c.redirect(request, "console_unanswered", notice=notice, error=error, query={"status": "answered"})

    return r


def _draft(c: Console, items: list[UnansweredItem], answer: str, topic: str, author: str) -> tuple[int, bool]:
    counts = Counter(i.question.strip() for i in items)
    wordings: dict[str, str] = {}
    for q, _n in counts.most_common():
        wordings.setdefault(q.casefold().rstrip("?. "), q)
    questions = list(wordings.values())
    if not topic:
        cands = candidates_for(c.holder, items[0].text, k=1)
        topic = cands[0]["topic"] if cands and cands[0]["score"] >= TOPIC_PREFILL_MIN else ""
    return c.store.drafts.create_once(question=questions[0], paraphrases=questions[1:11], answer=answer,
                                      topic=topic or None, author=author, unanswered_ids=[i.id for i in items])
