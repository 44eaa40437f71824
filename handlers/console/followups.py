"""Follow-up requests ("gặp cán bộ"): list, ticket with the citizen's conversation, notes, reply."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response

from bot.privacy import format_mobile
from bot.protocol import (
    DETAILS,
    DOSSIER_CANCEL,
    DOSSIER_START,
    FEEDBACK_NO,
    FEEDBACK_YES,
    FOLLOWUP_CANCEL,
    FOLLOWUP_CONFIRM,
    FOLLOWUP_START,
    FULL_TEXT,
    HELP,
    MEDIA,
    PICK,
    REPHRASE,
)
from bot.storage.followups import FOLLOWUP_STATUSES
from bot.storage.models import FollowUp, utcnow
from handlers.console.core import KIND_LABELS, Console, ConsoleRoute
from handlers.console.replies import MAX_REPLY_CHARS
from handlers.console.security import Principal
from indexer.placeholders import drop_unconfigured, render

BUTTON_LABELS = {
    FEEDBACK_YES: "Bấm “👍 Hữu ích”", FEEDBACK_NO: "Bấm “👎 Chưa hữu ích”", FOLLOWUP_START: "Bấm “Gặp cán bộ”",
    FOLLOWUP_CONFIRM: "Bấm “Xác nhận” (gửi yêu cầu)", FOLLOWUP_CANCEL: "Bấm “Hủy”",
    DOSSIER_START: "Bấm “Tra cứu hồ sơ”", DOSSIER_CANCEL: "Bấm “Dừng tra cứu”", HELP: "Bấm “Trợ giúp”",
    REPHRASE: "Bấm “Không phải các ý trên”", FULL_TEXT: "Bấm “Xem toàn văn”",
}
DELIVERY_LABELS = {"pending": "chờ gửi", "sent": "đã gửi", "failed": "gửi lỗi"}
WEB_PENDING = ("chờ công dân mở lại trang chat: trang web không nhận tin đẩy, tin sẽ hiện khi công dân mở lại "
               "trang trên cùng thiết bị")


def readable(c: Console, text: str) -> str:
    """A citizen's message as officers read it: a button's payload becomes what the button said."""
    t = (text or "").strip()
    if t in BUTTON_LABELS:
        return BUTTON_LABELS[t]
    for prefix, said in ((PICK, "Chọn"), (DETAILS, "Bấm “Xem chi tiết”")):
        if t.startswith(prefix):
            entry = c.holder.current.entry(t[len(prefix):]) if c.holder.version else None
            return f"{said}: {(entry or {}).get('title', t[len(prefix):])}"
    if t.startswith(MEDIA):
        return f"(gửi {t[len(MEDIA):] or 'tệp'}, không phải chữ)"
    return t


def thread(c: Console, f: FollowUp) -> list[dict[str, Any]]:
    """The conversation of a ticket, both sides, oldest first: {at, who: citizen|bot|officer, text, note}."""
    chat = c.store.followups.chat_of(f)
    return chat_thread(c, chat[0], chat[1]) if chat else []


def chat_thread(c: Console, channel: str, chat_id: str) -> list[dict[str, Any]]:
    """The conversation of one chat, both sides, oldest first."""
    events = c.store.followups.chat_conversation(channel, chat_id)
    chat = (channel, chat_id)
    out: list[dict[str, Any]] = []
    if chat and chat[0] == "web":
        lines = c.store.transcripts.history("web", chat[1], limit=120)
        if lines:
            for x in lines:
                who = {"user": "citizen"}.get(x.role, x.role)
                text = x.text if who != "citizen" or not x.payload else readable(c, x.payload) + f" ({x.text})"
                out.append({"at": x.created_at, "who": who, "text": text, "note": ""})
            shown = {x.text for x in lines if x.role == "officer"}
            for e in events:  # officers' messages the page has not shown yet
                if e["who"] == "officer" and e["text"] not in shown:
                    out.append({"at": e["at"], "who": "officer", "text": e["text"],
                                "note": WEB_PENDING if e["kind"] == "pending" else DELIVERY_LABELS.get(e["kind"], ""),
                                **_delivery(e)})
            out.sort(key=lambda e: e["at"])
            return out
    for e in events:
        if e["who"] == "citizen":
            out.append({"at": e["at"], "who": "citizen", "text": readable(c, e["text"]), "note": ""})
            title = ""
            if e.get("entry_id") and c.holder.version:
                title = (c.holder.current.entry(e["entry_id"]) or {}).get("title", "")
            said = KIND_LABELS.get(e["kind"], e["kind"] or "")
            out.append({"at": e["at"], "who": "bot", "text": f"{said}{': ' + title if title else ''}", "note": ""})
        else:
            pending_web = e["kind"] == "pending" and channel == "web"
            out.append({"at": e["at"], "who": "officer", "text": e["text"],
                        "note": WEB_PENDING if pending_web else DELIVERY_LABELS.get(e["kind"], e["kind"] or ""),
                        **_delivery(e)})
    return out


def _delivery(e: dict[str, Any]) -> dict[str, Any]:
    """An officer's message's delivery: its state, attempts, last error and outbox row (for "Gửi lại")."""
    return {"state": e.get("kind"), "attempts": e.get("attempts") or 0, "error": e.get("error"),
            "outbox_id": e.get("outbox_id")}


def make_router(c: Console) -> APIRouter:
    r = APIRouter(route_class=ConsoleRoute)
    officer = Depends(c.guard("officer"))

    @r.get("/followups", name="console_followups")
    def listing(request: Request, user: Principal = officer, status: str = "", mine: str = "") -> Response:
        rows = c.store.followups.recent(status if status in FOLLOWUP_STATUSES else None,
                                        assigned_to=user.username if mine else None)
        counts = c.store.followups.counts()
        return c.render(request, "followups.html", {"rows": rows, "status": status, "mine": mine,
                                                     "counts": counts, "statuses": FOLLOWUP_STATUSES})

    @r.get("/followups/{fid}", name="console_followup")
    def ticket(request: Request, fid: int, user: Principal = officer) -> Response:
        f = c.store.followups.get(fid)
        if f is None:
            return c.redirect(request, "console_followups", error="Không có yêu cầu này.")
        c.store.audit.log(user.username, "followup.view", "followup", fid, None)
        return c.render(request, "followup.html", {
            "f": f, "events": thread(c, f), "statuses": FOLLOWUP_STATUSES, "phone": format_mobile(f.phone),
            "users": [u.username for u in c.store.users.all() if u.active], "max_reply": MAX_REPLY_CHARS})

    @r.get("/conversation", name="console_conversation")
    def conversation(request: Request, user: Principal = officer, kenh: str = "", chat: str = "") -> Response:
        if not kenh or not chat or len(chat) > 128:
            return c.redirect(request, "console_unanswered", error="Thiếu kênh hoặc cuộc trò chuyện.")
        c.store.audit.log(user.username, "conversation.view", kenh, chat[-4:], None)
        return c.render(request, "conversation.html", {"events": chat_thread(c, kenh, chat), "kenh": kenh,
                                                       "chat_tail": chat[-4:]})

    @r.post("/followups/{fid}/update", name="console_followup_update")
    def update(request: Request, fid: int, user: Principal = officer, status: Annotated[str, Form()] = "",
               assigned_to: Annotated[str, Form()] = "", notes: Annotated[str, Form()] = "") -> Response:
        if c.store.followups.get(fid) is None:
            return c.redirect(request, "console_followups", error="Không có yêu cầu này.")
        if status and status not in FOLLOWUP_STATUSES:
            return c.redirect(request, "console_followup", fid=fid, error="Trạng thái không hợp lệ.")
        c.store.followups.update(fid, actor=user.username, status=status or None,
                                assigned_to=assigned_to.strip()[:64], notes=notes.strip())
        return c.redirect(request, "console_followup", fid=fid, notice="Đã lưu.")

    @r.post("/followups/{fid}/reply", name="console_followup_reply")
    def reply(request: Request, fid: int, user: Principal = officer, reply: Annotated[str, Form()] = "",
              done: Annotated[str, Form()] = "") -> Response:
        if c.store.followups.get(fid) is None:
            return c.redirect(request, "console_followups", error="Không có yêu cầu này.")
        text = reply.strip().replace("\r\n", "\n")
        if not text or len(text) > MAX_REPLY_CHARS:
            return c.redirect(request, "console_followup", fid=fid,
                              error=f"Nội dung trả lời cần từ 1 đến {MAX_REPLY_CHARS} ký tự.")
        values = c.settings.department.placeholders()
        message = drop_unconfigured(f"Cán bộ {values['dept_name']} phản hồi yêu cầu số {fid} của bạn:\n\n"
                                    f"{render(text, values)}", values)
        stamp = c.local(utcnow())
        channel = c.store.followups.reply(
            fid, message, actor=user.username, done=bool(done),
            note=lambda ch: f"[{stamp} {user.username}] Đã trả lời qua {ch}.")
        if channel is None:
            return c.redirect(request, "console_followup", fid=fid,
                              error="Không còn thông tin kênh của công dân; hãy gọi điện thoại.")
        return c.redirect(request, "console_followup", fid=fid,
                          notice="Đã xếp hàng gửi phản hồi tới công dân qua kênh họ đã dùng; trạng thái gửi "
                                 "hiện trong hội thoại bên dưới.")

    return r
