"""Q&A drafts made in the console from officers' replies, waiting for an administrator."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from sqlalchemy import select, text

from bot.storage.audit import record
from bot.storage.engine import Database
from bot.storage.models import KbDraft, Unanswered, utcnow

_ONCE = threading.Lock()


class Drafts:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create_once(self, *, question: str, paraphrases: list[str], answer: str, topic: str | None, author: str,
                    unanswered_ids: Sequence[int]) -> tuple[int, bool]:
        """One draft per group: (the id, True) when created, (the id of the draft still waiting that already
        holds one of these questions, False) otherwise; a double click makes one draft."""
        wanted = set(unanswered_ids)
        with _ONCE, self.db.transaction() as s:
            if self.db.dialect == "postgresql":
                s.execute(text("SELECT pg_advisory_xact_lock(1414)"))  # one draft creation at a time
            for row in s.scalars(select(KbDraft).where(KbDraft.status == "draft").order_by(KbDraft.id)):
                if wanted & set(row.unanswered_ids or []):
                    return row.id, False
            row = KbDraft(question=question.strip(), paraphrases=[p.strip() for p in paraphrases if p.strip()],
                          answer=answer.strip(), topic=topic or None, status="draft", author=author,
                          unanswered_ids=list(unanswered_ids))
            s.add(row)
            s.flush()
            record(s, author, "draft.create", "kb_draft", row.id, {"topic": topic})
            return row.id, True

    def create(self, *, question: str, paraphrases: list[str], answer: str, topic: str | None, author: str,
               unanswered_ids: Sequence[int]) -> int:
        with self.db.transaction() as s:
            row = KbDraft(question=question.strip(), paraphrases=[p.strip() for p in paraphrases if p.strip()],
                          answer=answer.strip(), topic=topic or None, status="draft", author=author,
                          unanswered_ids=list(unanswered_ids))
            s.add(row)
            s.flush()
            record(s, author, "draft.create", "kb_draft", row.id, {"topic": topic})
            return row.id

    def recent(self, status: str | None = "draft", limit: int = 200) -> list[KbDraft]:
        q = select(KbDraft).order_by(KbDraft.id.desc()).limit(limit)
        if status:
            q = q.where(KbDraft.status == status)
        with self.db.transaction() as s:
            return list(s.scalars(q))

    def get(self, draft_id: int) -> KbDraft | None:
        with self.db.transaction() as s:
            return s.get(KbDraft, draft_id)

    def approved(self, draft_id: int, *, entry_id: str, reviewer: str, question: str, answer: str, topic: str,
                 paraphrases: list[str], file: str) -> None:
        """Record that the draft became knowledge entry ``entry_id`` (and so did its questions)."""
        with self.db.transaction() as s:
            row = s.get(KbDraft, draft_id)
            if row is None:
                raise KeyError(draft_id)
            row.status, row.entry_id, row.reviewer = "approved", entry_id, reviewer
            row.question, row.answer, row.topic, row.paraphrases = question, answer, topic, paraphrases
            for uid in row.unanswered_ids or []:
                u = s.get(Unanswered, int(uid))
                if u is not None:
                    u.entry_id = entry_id
            record(s, reviewer, "draft.approve", "kb_draft", draft_id, {"entry_id": entry_id, "file": file})

    def reject(self, draft_id: int, *, reviewer: str) -> bool:
        """Reject a draft that is still waiting; False when it is not (any more)."""
        with self.db.transaction() as s:
            row = s.get(KbDraft, draft_id)
            if row is None or row.status != "draft":
                return False
            row.status, row.reviewer, row.updated_at = "rejected", reviewer, utcnow()
            record(s, reviewer, "draft.reject", "kb_draft", draft_id, None)
            return True
