"""Knowledge versions, drafts awaiting approval, entries to review, rebuild / switch / roll back."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from bot.models import KbDraft, KbVersion, Unanswered, utcnow
from handlers.console.core import Console, ConsoleRoute, apply_headers
from handlers.console.kbwrite import ApproveError, approve_entry
from handlers.console.replies import get_draft, list_drafts
from handlers.console.security import Principal
from indexer.index import IndexError_, current_version


def _lines(text: str) -> list[str]:
    return [x.strip() for x in (text or "").replace("\r\n", "\n").split("\n") if x.strip()]


def make_router(c: Console) -> APIRouter:
    r = APIRouter(route_class=ConsoleRoute)
    officer = Depends(c.guard("officer"))
    admin = Depends(c.guard("admin"))

    def status_dict() -> dict[str, object]:
        st = c.rebuilder.status.as_dict()
        st["serving"] = c.holder.version
        st["active"] = c.rebuilder.active_version()
        st["reload_error"] = c.rebuilder.reload_error
        return st

    @r.get("/knowledge", name="console_knowledge")
    def page(request: Request, user: Principal = officer) -> Response:
        kb = c.knowledge()
        with c.store.session() as s:
            db_versions = {v.name: v for v in s.scalars(select(KbVersion))}
        versions = list(reversed(c.rebuilder.versions()))
        review = [e for e in kb.entries if e.needs_review]
        return c.render(request, "knowledge.html", {
            "versions": versions, "db_versions": db_versions, "serving": c.holder.version,
            "active": c.rebuilder.active_version(), "pointer": current_version(c.settings.index_root),
            "previous": c.rebuilder.previous_version(), "status": c.rebuilder.status,
            "reload_error": c.rebuilder.reload_error,
            "drafts": list_drafts(c.store, "draft"), "recent": list_drafts(c.store, None, limit=20),
            "review": review, "kb_errors": kb.errors, "entries": len(kb.entries), "topics": kb.topics,
        })

    @r.get("/knowledge/status", name="console_knowledge_status")
    def status(request: Request, user: Principal = officer) -> Response:
        return apply_headers(JSONResponse(status_dict()))

    @r.post("/knowledge/rebuild", name="console_knowledge_rebuild")
    def rebuild(request: Request, user: Principal = admin) -> Response:
        if not c.rebuilder.start(user.username):
            return c.redirect(request, "console_knowledge", error="Đang dựng chỉ mục, vui lòng chờ.")
        c.store.audit(user.username, "kb.rebuild_start")
        return c.redirect(request, "console_knowledge", notice="Đã bắt đầu dựng chỉ mục mới.")

    @r.post("/knowledge/switch", name="console_knowledge_switch")
    async def switch(request: Request, user: Principal = admin) -> Response:
        form = await request.form()
        version = str(form.get("version") or "")
        try:
            await run_in_threadpool(c.rebuilder.switch, version, user.username)
        except IndexError_ as exc:
            return c.redirect(request, "console_knowledge", error=str(exc))
        return c.redirect(request, "console_knowledge", notice=_switched(c, version))

    @r.post("/knowledge/rollback", name="console_knowledge_rollback")
    async def rollback(request: Request, user: Principal = admin) -> Response:
        try:
            prev = await run_in_threadpool(c.rebuilder.rollback, user.username)
        except IndexError_ as exc:
            return c.redirect(request, "console_knowledge", error=str(exc))
        return c.redirect(request, "console_knowledge", notice="Đã quay lại. " + _switched(c, prev))

    # --- drafts ---------------------------------------------------------------------------------
    @r.get("/knowledge/drafts/{draft_id}", name="console_draft")
    def draft_page(request: Request, draft_id: int, user: Principal = officer) -> Response:
        d = get_draft(c.store, draft_id)
        if d is None:
            return c.redirect(request, "console_knowledge", error="Không có bản nháp này.")
        return c.render(request, "draft.html", _draft_form(c, d))

    @r.post("/knowledge/drafts/{draft_id}/approve", name="console_draft_approve")
    def approve(request: Request, draft_id: int, user: Principal = admin,
                question: Annotated[str, Form()] = "", paraphrases: Annotated[str, Form()] = "",
                answer: Annotated[str, Form()] = "", topic: Annotated[str, Form()] = "",
                legal_basis: Annotated[str, Form()] = "", valid_from: Annotated[str, Form()] = "",
                source: Annotated[str, Form()] = "", needs_review: Annotated[str, Form()] = "") -> Response:
        d = get_draft(c.store, draft_id)
        if d is None or d.status != "draft":
            return c.redirect(request, "console_knowledge", error="Bản nháp không còn chờ duyệt.")
        values = {"question": question, "paraphrases": paraphrases, "answer": answer, "topic": topic,
                  "legal_basis": legal_basis, "valid_from": valid_from, "source": source,
                  "needs_review": bool(needs_review)}
        try:
            entry_id, rel = approve_entry(
                c.settings.knowledge_dir, topic=topic, question=question, paraphrases=_lines(paraphrases),
                answer=answer, legal_basis=_lines(legal_basis), valid_from=valid_from,
                needs_review=bool(needs_review), source=source or None)
        except ApproveError as exc:
            c.store.audit(user.username, "draft.approve_refused", "kb_draft", draft_id, {"errors": len(exc.errors)})
            ctx = _draft_form(c, d)
            ctx.update({"values": values, "errors": exc.errors})
            return c.render(request, "draft.html", ctx, status_code=422)
        with c.store.session() as s:
            row = s.get(KbDraft, draft_id)
            assert row is not None
            row.status, row.entry_id, row.reviewer = "approved", entry_id, user.username
            row.question, row.answer, row.topic = question.strip(), answer.strip(), topic
            row.paraphrases = _lines(paraphrases)
            for uid in row.unanswered_ids or []:
                u = s.get(Unanswered, int(uid))
                if u is not None:
                    u.entry_id = entry_id
            c.store._audit(s, user.username, "draft.approve", "kb_draft", draft_id,
                           {"entry_id": entry_id, "file": rel})
        return c.redirect(request, "console_knowledge",
                          notice=f"Đã duyệt: mục {entry_id} được ghi vào {rel}. Hãy dựng lại chỉ mục "
                                 "rồi chuyển sang phiên bản mới để trợ lý dùng mục này.")

    @r.post("/knowledge/drafts/{draft_id}/reject", name="console_draft_reject")
    def reject(request: Request, draft_id: int, user: Principal = admin) -> Response:
        with c.store.session() as s:
            row = s.get(KbDraft, draft_id)
            if row is None or row.status != "draft":
                return c.redirect(request, "console_knowledge", error="Bản nháp không còn chờ duyệt.")
            row.status, row.reviewer, row.updated_at = "rejected", user.username, utcnow()
            c.store._audit(s, user.username, "draft.reject", "kb_draft", draft_id, None)
        return c.redirect(request, "console_knowledge", notice=f"Đã từ chối bản nháp số {draft_id}.")

    return r


def _switched(c: Console, version: str) -> str:
    if c.holder.version == version:
        return f"Trợ lý đang dùng phiên bản {version}."
    if c.rebuilder.reload_error:
        return f"Đã chọn phiên bản {version} nhưng chưa nạp được: {c.rebuilder.reload_error}"
    return f"Đã chọn phiên bản {version}; đang nạp (các máy chủ khác tự chuyển trong giây lát)."


def _draft_form(c: Console, d: KbDraft) -> dict[str, object]:
    values = {
        "question": d.question, "paraphrases": "\n".join(d.paraphrases or []), "answer": d.answer,
        "topic": d.topic or "", "legal_basis": "", "valid_from": dt.date.today().isoformat(), "source": "",
        "needs_review": False,
    }
    return {"draft": d, "values": values, "errors": [], "topics": c.topics()}
