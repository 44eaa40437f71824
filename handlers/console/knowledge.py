"""Knowledge versions, drafts awaiting approval, entries to review, rebuild / switch / roll back."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from bot.knowledge_admin import ApproveError, IndexMissing
from bot.storage.models import KbDraft
from handlers.console.core import Console, ConsoleRoute, apply_headers
from handlers.console.grouping import candidates_for, cited_basis
from handlers.console.security import Principal
from indexer.index import version_entries

PAGE_SIZE = 25
"""Rows per page of the long lists (entries to review)."""
COMPARED = ("title", "answer", "details", "topic", "legal_basis", "valid_from", "questions", "paraphrases")


def version_diff(c: Console, old: str | None, new: str) -> dict[str, list[dict[str, str]]]:
    """Entries added, changed and removed going from version ``old`` to ``new``."""
    before = version_entries(c.settings.index_root, old) if old else {}
    after = version_entries(c.settings.index_root, new)
    def row(e: dict[str, Any], fields: list[str] | None = None) -> dict[str, str]:
        return {"id": e["id"], "title": e.get("title", e["id"]), "fields": ", ".join(fields or [])}
    changed = []
    for eid in sorted(set(before) & set(after)):
        fields = [f for f in COMPARED if before[eid].get(f) != after[eid].get(f)]
        if fields:
            changed.append(row(after[eid], fields))
    return {"added": [row(after[e]) for e in sorted(set(after) - set(before))],
            "changed": changed,
            "removed": [row(before[e]) for e in sorted(set(before) - set(after))]}


def paginate(rows: list[Any], page: int) -> tuple[list[Any], int, int]:
    """(the rows of page ``page``, that page, the number of pages)."""
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    page = min(max(1, page), pages)
    return rows[(page - 1) * PAGE_SIZE: page * PAGE_SIZE], page, pages


def _lines(text: str) -> list[str]:
    return [x.strip() for x in (text or "").replace("\r\n", "\n").split("\n") if x.strip()]


def make_router(c: Console) -> APIRouter:
    r = APIRouter(route_class=ConsoleRoute)
    officer = Depends(c.guard("officer"))
    admin = Depends(c.guard("admin"))

    def status_dict() -> dict[str, object]:
        st = c.rebuilder.status.as_dict()
        st["serving"] = c.holder.version
        st["active"] = c.admin.active()
        st["reload_error"] = c.rebuilder.reload_error
        return st

    @r.get("/knowledge", name="console_knowledge")
    def page(request: Request, user: Principal = officer, trang: int = 1, chu_de: str = "") -> Response:
        kb = c.knowledge()
        versions = list(reversed(c.admin.versions()))
        all_review = [e for e in kb.entries if e.needs_review and (not chu_de or e.topic == chu_de)]
        review, trang, pages = paginate(all_review, trang)
        return c.render(request, "knowledge.html", {
            "versions": versions, "serving": c.holder.version, "active": c.admin.active(),
            "previous": c.admin.previous(), "status": c.rebuilder.status,
            "reload_error": c.rebuilder.reload_error,
            "drafts": c.store.drafts.recent("draft"), "recent": c.store.drafts.recent(None, limit=20),
            "review": review, "review_total": len(all_review), "trang": trang, "pages": pages, "chu_de": chu_de,
            "kb_errors": kb.errors, "entries": len(kb.entries), "topics": kb.topics,
        })

    @r.get("/knowledge/confirm", name="console_knowledge_confirm")
    def confirm(request: Request, user: Principal = admin, version: str = "", rollback: str = "") -> Response:
        active = c.admin.active()
        target = c.admin.previous() if rollback else version
        known = {m.version for m in c.admin.versions()}
        if not target or target not in known:
            return c.redirect(request, "console_knowledge", error="Không có phiên bản này.")
        return c.render(request, "knowledge_confirm.html", {
            "target": target, "active": active, "rollback": bool(rollback),
            "diff": version_diff(c, active, target)})

    @r.get("/knowledge/status", name="console_knowledge_status")
    def status(request: Request, user: Principal = officer) -> Response:
        return apply_headers(JSONResponse(status_dict()))

    @r.post("/knowledge/rebuild", name="console_knowledge_rebuild")
    def rebuild(request: Request, user: Principal = admin) -> Response:
        if not c.rebuilder.start(user.username):
            return c.redirect(request, "console_knowledge", error="Đang dựng chỉ mục, vui lòng chờ.")
        c.store.audit.log(user.username, "kb.rebuild_start")
        return c.redirect(request, "console_knowledge", notice="Đã bắt đầu dựng chỉ mục mới.")

    @r.post("/knowledge/switch", name="console_knowledge_switch")
    async def switch(request: Request, user: Principal = admin) -> Response:
        form = await request.form()
        version = str(form.get("version") or "")
        try:
            await run_in_threadpool(c.rebuilder.switch, version, user.username)
        except IndexMissing as exc:
            return c.redirect(request, "console_knowledge", error=str(exc))
        return c.redirect(request, "console_knowledge", notice=_switched(c, version))

    @r.post("/knowledge/rollback", name="console_knowledge_rollback")
    async def rollback(request: Request, user: Principal = admin) -> Response:
        try:
            prev = await run_in_threadpool(c.rebuilder.rollback, user.username)
        except IndexMissing as exc:
            return c.redirect(request, "console_knowledge", error=str(exc))
        return c.redirect(request, "console_knowledge", notice="Đã quay lại. " + _switched(c, prev))

    # --- drafts ---------------------------------------------------------------------------------
    @r.get("/knowledge/drafts/{draft_id}", name="console_draft")
    def draft_page(request: Request, draft_id: int, user: Principal = officer) -> Response:
        d = c.store.drafts.get(draft_id)
        if d is None:
            return c.redirect(request, "console_knowledge", error="Không có bản nháp này.")
        return c.render(request, "draft.html", _draft_form(c, d))

    @r.post("/knowledge/drafts/{draft_id}/approve", name="console_draft_approve")
    def approve(request: Request, draft_id: int, user: Principal = admin,
                question: Annotated[str, Form()] = "", paraphrases: Annotated[str, Form()] = "",
                answer: Annotated[str, Form()] = "", topic: Annotated[str, Form()] = "",
                legal_basis: Annotated[str, Form()] = "", valid_from: Annotated[str, Form()] = "",
                source: Annotated[str, Form()] = "", needs_review: Annotated[str, Form()] = "") -> Response:
        d = c.store.drafts.get(draft_id)
        if d is None or d.status != "draft":
            return c.redirect(request, "console_knowledge", error="Bản nháp không còn chờ duyệt.")
        values = {"question": question, "paraphrases": paraphrases, "answer": answer, "topic": topic,
                  "legal_basis": legal_basis, "valid_from": valid_from, "source": source,
                  "needs_review": bool(needs_review)}
        try:
            entry_id, rel = c.admin.approve_draft(
                draft_id, actor=user.username, topic=topic, question=question, paraphrases=_lines(paraphrases),
                answer=answer, legal_basis=_lines(legal_basis), valid_from=valid_from,
                needs_review=bool(needs_review), source=source or None)
        except ApproveError as exc:
            ctx = _draft_form(c, d)
            ctx.update({"values": values, "errors": exc.errors})
            return c.render(request, "draft.html", ctx, status_code=422)
        except KeyError:
            return c.redirect(request, "console_knowledge", error="Bản nháp không còn chờ duyệt.")
        return c.redirect(request, "console_knowledge",
                          notice=f"Đã duyệt: mục {entry_id} được ghi vào {rel}. Hãy dựng lại chỉ mục "
                                 "rồi chuyển sang phiên bản mới để trợ lý dùng mục này.")

    @r.post("/knowledge/drafts/{draft_id}/reject", name="console_draft_reject")
    def reject(request: Request, draft_id: int, user: Principal = admin) -> Response:
        if not c.admin.reject_draft(draft_id, actor=user.username):
            return c.redirect(request, "console_knowledge", error="Bản nháp không còn chờ duyệt.")
        return c.redirect(request, "console_knowledge", notice=f"Đã từ chối bản nháp số {draft_id}.")

    return r


def _switched(c: Console, version: str) -> str:
    if c.holder.version == version:
        return f"Trợ lý đang dùng phiên bản {version}."
    if c.rebuilder.reload_error:
        return f"Đã chọn phiên bản {version} nhưng chưa nạp được: {c.rebuilder.reload_error}"
    return f"Đã chọn phiên bản {version}; đang nạp (các máy chủ khác tự chuyển trong giây lát)."


def similar_entries(c: Console, d: KbDraft) -> list[dict[str, Any]]:
    """The entries the assistant finds closest to the draft's question (to avoid a duplicate entry)."""
    out = []
    for cand in candidates_for(c.holder, d.question, k=3):
        e = c.holder.current.entry(cand["entry_id"]) if c.holder.version else None
        if e is not None:
            out.append({**cand, "answer": c.holder.current.render(e.get("answer", "")),
                        "valid_from": e.get("valid_from", "")})
    return out


def _draft_form(c: Console, d: KbDraft) -> dict[str, object]:
    values = {
        "question": d.question, "paraphrases": "\n".join(d.paraphrases or []), "answer": d.answer,
        "topic": d.topic or "", "legal_basis": "", "valid_from": "", "source": "",
        "needs_review": False,
    }
    cited = cited_basis(d.answer)
    if cited:  # drafted from a clause of a legal text: its citation and date are the entry's basis
        values["legal_basis"], values["valid_from"] = cited
    # "áp dụng từ" is the date the rule applies from (the legal text's effect), never today by default
    return {"draft": d, "values": values, "errors": [], "topics": c.topics(), "similar": similar_entries(c, d),
            "today": dt.date.today().isoformat()}
