"""What citizens asked: every request and its outcome, the questions left unanswered, feedback."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, func, insert, select

from bot.privacy import mask_text
from bot.protocol import ReplyKind
from bot.storage.audit import record
from bot.storage.engine import Database
from bot.storage.identities import Identities
from bot.storage.models import ChatIdentity, Feedback, RequestLog, Unanswered, utcnow
from bot.storage.outbox import new_message

UNANSWERED_STATUSES = ("new", "answered", "dismissed", "out_of_scope")
SET_ASIDE = ("dismissed", "out_of_scope")
"""Statuses an officer sets without answering (undoable)."""
REQUEST_KINDS = tuple(k.value for k in ReplyKind)


@dataclass
class UnansweredItem:
    """A question in the officers' queue, with the channel and chat it came from."""

    id: int
    question: str
    normalized: str | None
    status: str
    created_at: datetime
    channel: str | None
    chat_id: str | None
    source: str
    """fallback (the assistant declined), document (answered with a quoted clause of the legal texts, not a
    curated answer) or feedback ("chưa hữu ích" on an answer / choice)"""
    officer_reply: str | None
    handled_by: str | None
    entry_id: str | None
    answered_entry: str | None
    """The entry the assistant had answered with (feedback rows)."""
    group_label: str | None = None
    """Set when an officer split it out of a group."""
    assigned_to: str | None = None
    """The officer it was assigned to."""

    @property
    def text(self) -> str:
        return (self.normalized or self.question).strip()


@dataclass
class ReplyResult:
    answered: list[int]
    skipped: list[int]
    messages: int


_R, _C = cast(Table, RequestLog.__table__), cast(Table, ChatIdentity.__table__)
_U = cast(Table, Unanswered.__table__)
_INSERT_REQUEST = insert(_R).returning(_R.c.id)
"""Statements built once (statement and cache key): they run on every message."""
_INSERT_UNANSWERED = insert(_U).returning(_U.c.id)
_COUNT_SINCE = (select(func.count(_R.c.id)).select_from(_R.join(_C, _C.c.id == _R.c.identity_id))
                .where(_C.c.channel == bindparam("channel"), _C.c.external_id == bindparam("chat_id"),
                       _R.c.created_at >= bindparam("since")))


class Requests:
    def __init__(self, db: Database, identities: Identities) -> None:
        self.db = db
        self.identities = identities

    # --- requests -----------------------------------------------------------------------------------
    def log(self, channel: str, chat_id: str, question: str, *, kind: str, normalized: str | None = None,
            entry_id: str | None = None, topic: str | None = None, score: float | None = None,
            latency_ms: float | None = None, kb_version: str | None = None) -> int:
        """Record one answered message and its outcome; returns the request id (for feedback).

        Phone and ID numbers in the question are masked before storing.
        """
        if kind not in REQUEST_KINDS:
            raise ValueError(f"unknown request kind {kind!r}")
        with self.db.transaction() as s:
            ident = self.identities.id_in(s, channel, chat_id)
            return int(s.execute(_INSERT_REQUEST, {
                "identity_id": ident, "question": mask_text(question),
                "normalized": mask_text(normalized) if normalized else normalized, "kind": str(kind),
                "entry_id": entry_id, "topic": topic, "score": score, "latency_ms": latency_ms,
                "kb_version": kb_version, "created_at": utcnow(),
            }).scalar_one())

    def count_since(self, channel: str, chat_id: str, since: datetime) -> int:
        """How many messages this chat sent since ``since`` (for flood limiting across processes)."""
        with self.db.transaction() as s:
            return int(s.scalar(_COUNT_SINCE, {"channel": channel, "chat_id": str(chat_id), "since": since}) or 0)

    # --- feedback -----------------------------------------------------------------------------------
    def add_feedback(self, channel: str, chat_id: str, helpful: bool, *, request_id: int | None = None,
                     entry_id: str | None = None, comment: str | None = None) -> int:
        ident = self.identities.get_or_create(channel, chat_id)
        with self.db.transaction() as s:
            row = Feedback(identity_id=ident, request_id=request_id, entry_id=entry_id, helpful=bool(helpful),
                           comment=mask_text(comment) if comment else None)
            s.add(row)
            s.flush()
            return row.id

    # --- unanswered questions -------------------------------------------------------------------------
    def log_unanswered(self, channel: str, chat_id: str, question: str, *, normalized: str | None = None,
                       request_id: int | None = None) -> int:
        with self.db.transaction() as s:
            ident = self.identities.id_in(s, channel, chat_id)
            return int(s.execute(_INSERT_UNANSWERED, {
                "identity_id": ident, "request_id": request_id, "question": mask_text(question),
                "normalized": mask_text(normalized) if normalized else normalized, "status": "new",
            }).scalar_one())

    def count_unanswered(self, status: str = "new") -> int:
        with self.db.transaction() as s:
            return int(s.scalar(select(func.count()).select_from(Unanswered).where(Unanswered.status == status))
                       or 0)

    def list_unanswered(self, status: str | None = "new", limit: int = 100) -> list[Unanswered]:
        q = select(Unanswered).order_by(Unanswered.created_at.desc(), Unanswered.id.desc()).limit(limit)
        if status:
            q = q.where(Unanswered.status == status)
        with self.db.transaction() as s:
            return list(s.scalars(q))

    def resolve_unanswered(self, unanswered_id: int, *, actor: str, status: str,
                           officer_reply: str | None = None, entry_id: str | None = None) -> None:
        """Mark an unanswered question answered (with the reply / the entry it became) or dismissed."""
        if status not in UNANSWERED_STATUSES:
            raise ValueError(f"unknown status {status!r}")
        with self.db.transaction() as s:
            row = s.get(Unanswered, unanswered_id)
            if row is None:
                raise KeyError(unanswered_id)
            row.status = status
            row.officer_reply = officer_reply if officer_reply is not None else row.officer_reply
            row.entry_id = entry_id if entry_id is not None else row.entry_id
            row.handled_by = actor
            record(s, actor, f"unanswered.{status}", "unanswered", unanswered_id, {"entry_id": entry_id})

    def queue(self, *, status: str | None = "new", channel: str | None = None, source: str | None = None,
              since: datetime | None = None, until: datetime | None = None, search: str | None = None,
              ids: Sequence[int] | None = None, assigned_to: str | None = None,
              limit: int = 2000) -> list[UnansweredItem]:
        """The officers' queue, newest first, with the channel of each question and how it came about.
        ``assigned_to``: only the questions assigned to this officer."""
        q = (
            select(Unanswered, ChatIdentity.channel, ChatIdentity.external_id, RequestLog.kind,
                   RequestLog.entry_id)
            .outerjoin(ChatIdentity, ChatIdentity.id == Unanswered.identity_id)
            .outerjoin(RequestLog, RequestLog.id == Unanswered.request_id)
            .order_by(Unanswered.created_at.desc(), Unanswered.id.desc())
            .limit(limit)
        )
        if status:
            q = q.where(Unanswered.status == status)
        if channel:
            q = q.where(ChatIdentity.channel == channel)
        if since is not None:
            q = q.where(Unanswered.created_at >= since)
        if until is not None:
            q = q.where(Unanswered.created_at < until)
        if ids is not None:
            q = q.where(Unanswered.id.in_(list(ids)))
        if assigned_to:
            q = q.where(Unanswered.assigned_to == assigned_to)
        if search:
            like = f"%{search.strip().lower()}%"
            q = q.where(Unanswered.question.ilike(like) | Unanswered.normalized.ilike(like))
        out = []
        with self.db.transaction() as s:
            for u, ch, ext, kind, answered_entry in s.execute(q):
                # "document": answered with a quoted clause of the legal texts, not a curated answer.
                src = "fallback" if kind in (None, "fallback") else "document" if kind == "document" else "feedback"
                if source and src != source:
                    continue
                out.append(UnansweredItem(
                    id=u.id, question=u.question, normalized=u.normalized, status=u.status,
                    created_at=u.created_at, channel=ch, chat_id=ext, source=src, officer_reply=u.officer_reply,
                    handled_by=u.handled_by, entry_id=u.entry_id,
                    answered_entry=answered_entry if src == "feedback" else None, group_label=u.group_label,
                    assigned_to=u.assigned_to))
        return out

    def reply(self, ids: Sequence[int], reply: str, *, actor: str,
              message: Callable[[str], str]) -> ReplyResult:
        """In one transaction: queue one message per citizen (the channel and chat of each question; the
        text is ``message(question)``) in the outbox and mark the questions answered. Questions already
        handled by someone else are skipped."""
        answered: list[int] = []
        skipped: list[int] = []
        sent_to: set[tuple[str, str]] = set()
        with self.db.transaction() as s:
            q = (select(Unanswered, ChatIdentity.channel, ChatIdentity.external_id)
                 .outerjoin(ChatIdentity, ChatIdentity.id == Unanswered.identity_id)
                 .where(Unanswered.id.in_(list(ids))).order_by(Unanswered.created_at, Unanswered.id))
            if self.db.dialect == "postgresql":
                q = q.with_for_update(of=Unanswered)
            for u, channel, chat_id in s.execute(q):
                if u.status != "new":
                    skipped.append(u.id)
                    continue
                if channel and chat_id and (channel, chat_id) not in sent_to:
                    sent_to.add((channel, chat_id))
                    msg = new_message(channel, chat_id, message(u.question))
                    msg.unanswered_id = u.id
                    s.add(msg)
                u.status = "answered"
                u.officer_reply = reply
                u.handled_by = actor
                answered.append(u.id)
            record(s, actor, "unanswered.reply", "unanswered", ",".join(map(str, answered))[:128],
                   {"questions": len(answered), "citizens": len(sent_to), "skipped": len(skipped)})
        return ReplyResult(answered, skipped, len(sent_to))

    def dismiss(self, ids: Sequence[int], *, actor: str, status: str = "dismissed") -> list[int]:
        """Set new questions aside (``dismissed``, or ``out_of_scope``: "ngoài thẩm quyền"); the ids changed."""
        if status not in SET_ASIDE:
            raise ValueError(f"not a set-aside status: {status!r}")
        done: list[int] = []
        with self.db.transaction() as s:
            for u in s.scalars(select(Unanswered).where(Unanswered.id.in_(list(ids)))):
                if u.status == "new":
                    u.status = status
                    u.handled_by = actor
                    done.append(u.id)
            record(s, actor, f"unanswered.{status}", "unanswered", ",".join(map(str, ids))[:128],
                   {"questions": len(done)})
        return sorted(done)

    def undo_dismiss(self, ids: Sequence[int], *, actor: str) -> int:
        """Put questions set aside back in the queue (the undo of :meth:`dismiss`); how many went back."""
        n = 0
        with self.db.transaction() as s:
            for u in s.scalars(select(Unanswered).where(Unanswered.id.in_(list(ids)))):
                if u.status in SET_ASIDE:
                    u.status = "new"
                    u.handled_by = None
                    n += 1
            record(s, actor, "unanswered.undo", "unanswered", ",".join(map(str, ids))[:128], {"questions": n})
        return n

    def assign(self, ids: Sequence[int], assignee: str | None, *, actor: str) -> list[int]:
        """Assign questions still in the queue to an officer (``None``/"": no one); the ids changed.

        Questions already answered or set aside keep their assignee (they are no longer anyone's work)."""
        assignee = (assignee or "").strip()[:64] or None
        done: list[int] = []
        with self.db.transaction() as s:
            for u in s.scalars(select(Unanswered).where(Unanswered.id.in_(list(ids)))):
                if u.status == "new" and u.assigned_to != assignee:
                    u.assigned_to = assignee
                    done.append(u.id)
            record(s, actor, "unanswered.assign", "unanswered", ",".join(map(str, ids))[:128],
                   {"assigned_to": assignee, "questions": len(done)})
        return sorted(done)

    def split(self, ids: Sequence[int], *, actor: str) -> str | None:
        """Group these questions apart from the rest of their group; the new group's label."""
        ids = sorted(set(ids))
        if not ids:
            return None
        label = f"s{ids[0]}-{len(ids)}"
        with self.db.transaction() as s:
            for u in s.scalars(select(Unanswered).where(Unanswered.id.in_(ids))):
                u.group_label = label
            record(s, actor, "unanswered.split", "unanswered", ",".join(map(str, ids))[:128], {"label": label})
        return label


__all__ = ["REQUEST_KINDS", "SET_ASIDE", "ReplyResult", "Requests", "UNANSWERED_STATUSES", "UnansweredItem"]
