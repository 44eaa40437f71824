"""Officers' replies to citizens (through the outbox) and Q&A drafts made from them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from bot.models import ChatIdentity, KbDraft, Outbox, Unanswered, utcnow
from bot.store import Store

MAX_REPLY_CHARS = 1200


@dataclass
class ReplyResult:
    answered: list[int]
    skipped: list[int]
    messages: int


def citizen_message(dept_name: str, question: str, reply: str) -> str:
    q = question.strip()
    if len(q) > 200:
        q = q[:197] + "…"
    return (f"Cán bộ {dept_name} trả lời câu hỏi của bạn:\n«{q}»\n\n{reply.strip()}\n\n"
            "Bạn cần hỏi thêm cứ nhắn cho trợ lý nhé.")


def reply_to_unanswered(store: Store, ids: Sequence[int], reply: str, *, actor: str, dept_name: str,
                        rendered: str | None = None) -> ReplyResult:
    """In one transaction: queue one message per citizen (channel + chat of each question) in the outbox
    and mark the questions answered. Questions already handled by someone else are skipped."""
    text_for_citizen = rendered if rendered is not None else reply
    answered: list[int] = []
    skipped: list[int] = []
    sent_to: set[tuple[str, str]] = set()
    with store.session() as s:
        q = (select(Unanswered, ChatIdentity.channel, ChatIdentity.external_id)
             .outerjoin(ChatIdentity, ChatIdentity.id == Unanswered.identity_id)
             .where(Unanswered.id.in_(list(ids))).order_by(Unanswered.created_at, Unanswered.id))
        if s.get_bind().dialect.name == "postgresql":
            q = q.with_for_update(of=Unanswered)
        now = utcnow()
        for u, channel, chat_id in s.execute(q):
            if u.status != "new":
                skipped.append(u.id)
                continue
            if channel and chat_id and (channel, chat_id) not in sent_to:
                sent_to.add((channel, chat_id))
                s.add(Outbox(channel=channel, chat_id=chat_id,
                             text=citizen_message(dept_name, u.question, text_for_citizen),
                             buttons=[], status="pending", attempts=0, next_attempt_at=now))
            u.status = "answered"
            u.officer_reply = reply
            u.handled_by = actor
            answered.append(u.id)
        store._audit(s, actor, "unanswered.reply", "unanswered", ",".join(map(str, answered))[:128],
                     {"questions": len(answered), "citizens": len(sent_to), "skipped": len(skipped)})
    return ReplyResult(answered, skipped, len(sent_to))


def dismiss_unanswered(store: Store, ids: Sequence[int], *, actor: str) -> int:
    n = 0
    with store.session() as s:
        for u in s.scalars(select(Unanswered).where(Unanswered.id.in_(list(ids)))):
            if u.status == "new":
                u.status = "dismissed"
                u.handled_by = actor
                n += 1
        store._audit(s, actor, "unanswered.dismiss", "unanswered", ",".join(map(str, ids))[:128],
                     {"questions": n})
    return n


def create_draft(store: Store, *, question: str, paraphrases: list[str], answer: str, topic: str | None,
                 author: str, unanswered_ids: Sequence[int]) -> int:
    with store.session() as s:
        row = KbDraft(question=question.strip(), paraphrases=[p.strip() for p in paraphrases if p.strip()],
                      answer=answer.strip(), topic=topic or None, status="draft", author=author,
                      unanswered_ids=list(unanswered_ids))
        s.add(row)
        s.flush()
        store._audit(s, author, "draft.create", "kb_draft", row.id, {"topic": topic})
        return row.id


def list_drafts(store: Store, status: str | None = "draft", limit: int = 200) -> list[KbDraft]:
    with store.session() as s:
        q = select(KbDraft).order_by(KbDraft.id.desc()).limit(limit)
        if status:
            q = q.where(KbDraft.status == status)
        return list(s.scalars(q))


def get_draft(store: Store, draft_id: int) -> KbDraft | None:
    with store.session() as s:
        return s.get(KbDraft, draft_id)
