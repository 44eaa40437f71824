"""Follow-up requests ("gặp cán bộ"): list, ticket with the citizen's conversation, notes, reply."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from sqlalchemy import func, select

from bot.models import ChatIdentity, FollowUp, Outbox, RequestLog, utcnow
from bot.store import FOLLOWUP_STATUSES
from handlers.console.core import Console, ConsoleRoute
from handlers.console.replies import MAX_REPLY_CHARS
from handlers.console.security import Principal, list_users
from indexer.knowledge import render


def conversation(c: Console, f: FollowUp, limit: int = 60) -> list[dict[str, Any]]:
    """The citizen's recent messages (and how the assistant handled them) and officers' messages."""
    events: list[dict[str, Any]] = []
    with c.store.session() as s:
        ident = s.get(ChatIdentity, f.identity_id) if f.identity_id else None
        if ident is None:
            return []
        for req in s.scalars(select(RequestLog).where(RequestLog.identity_id == ident.id)
                             .order_by(RequestLog.created_at.desc()).limit(limit)):
            events.append({"at": req.created_at, "who": "citizen", "text": req.question, "kind": req.kind,
                           "entry_id": req.entry_id})
        for out in s.scalars(select(Outbox).where(Outbox.channel == ident.channel,
                                                  Outbox.chat_id == ident.external_id)
                             .order_by(Outbox.created_at.desc()).limit(limit)):
            events.append({"at": out.created_at, "who": "officer", "text": out.text, "kind": out.status,
                           "entry_id": None})
    events.sort(key=lambda e: e["at"])
    return events


def make_router(c: Console) -> APIRouter:
    r = APIRouter(route_class=ConsoleRoute)
    officer = Depends(c.guard("officer"))

    @r.get("/followups", name="console_followups")
    def listing(request: Request, user: Principal = officer, status: str = "", mine: str = "") -> Response:
        with c.store.session() as s:
            q = select(FollowUp).order_by(FollowUp.id.desc()).limit(300)
            if status in FOLLOWUP_STATUSES:
                q = q.where(FollowUp.status == status)
            if mine:
                q = q.where(FollowUp.assigned_to == user.username)
            rows = list(s.scalars(q))
            counts = dict(s.execute(select(FollowUp.status, func.count()).group_by(FollowUp.status)).all())
        return c.render(request, "followups.html", {"rows": rows, "status": status, "mine": mine,
                                                     "counts": counts, "statuses": FOLLOWUP_STATUSES})

    @r.get("/followups/{fid}", name="console_followup")
    def ticket(request: Request, fid: int, user: Principal = officer) -> Response:
        f = c.store.get_followup(fid)
        if f is None:
            return c.redirect(request, "console_followups", error="Không có yêu cầu này.")
        c.store.audit(user.username, "followup.view", "followup", fid, None)
        return c.render(request, "followup.html", {
            "f": f, "events": conversation(c, f), "statuses": FOLLOWUP_STATUSES,
            "users": [u.username for u in list_users(c.store) if u.active], "max_reply": MAX_REPLY_CHARS})

    @r.post("/followups/{fid}/update", name="console_followup_update")
    def update(request: Request, fid: int, user: Principal = officer, status: Annotated[str, Form()] = "",
               assigned_to: Annotated[str, Form()] = "", notes: Annotated[str, Form()] = "") -> Response:
        if c.store.get_followup(fid) is None:
            return c.redirect(request, "console_followups", error="Không có yêu cầu này.")
        if status and status not in FOLLOWUP_STATUSES:
            return c.redirect(request, "console_followup", fid=fid, error="Trạng thái không hợp lệ.")
        c.store.update_followup(fid, actor=user.username, status=status or None,
                                assigned_to=assigned_to.strip()[:64], notes=notes.strip())
        return c.redirect(request, "console_followup", fid=fid, notice="Đã lưu.")

    @r.post("/followups/{fid}/reply", name="console_followup_reply")
    def reply(request: Request, fid: int, user: Principal = officer, reply: Annotated[str, Form()] = "",
              done: Annotated[str, Form()] = "") -> Response:
        f = c.store.get_followup(fid)
        if f is None:
            return c.redirect(request, "console_followups", error="Không có yêu cầu này.")
        text = reply.strip().replace("\r\n", "\n")
        if not text or len(text) > MAX_REPLY_CHARS:
            return c.redirect(request, "console_followup", fid=fid,
                              error=f"Nội dung trả lời cần từ 1 đến {MAX_REPLY_CHARS} ký tự.")
        with c.store.session() as s:
            ident = s.get(ChatIdentity, f.identity_id) if f.identity_id else None
            if ident is None:
                return c.redirect(request, "console_followup", fid=fid,
                                  error="Không còn thông tin kênh của công dân; hãy gọi điện thoại.")
            message = (f"Cán bộ {c.settings.dept_name} phản hồi yêu cầu số {fid} của bạn:\n\n"
                       f"{render(text, c.settings.department())}")
            s.add(Outbox(channel=ident.channel, chat_id=ident.external_id, text=message, buttons=[],
                         status="pending", attempts=0, next_attempt_at=utcnow()))
            row = s.get(FollowUp, fid)
            assert row is not None
            stamp = c.local(utcnow())
            row.notes = ((row.notes or "") + f"\n[{stamp} {user.username}] Đã trả lời qua {ident.channel}.").strip()
            row.status = "done" if done else ("in-progress" if row.status == "new" else row.status)
            if not row.assigned_to:
                row.assigned_to = user.username
            c.store._audit(s, user.username, "followup.reply", "followup", fid,
                           {"channel": ident.channel, "status": row.status})
        return c.redirect(request, "console_followup", fid=fid,
                          notice="Đã gửi phản hồi tới công dân qua kênh họ đã dùng.")

    return r
