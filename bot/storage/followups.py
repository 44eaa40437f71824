"""Follow-up requests ("gặp cán bộ"): tickets, their handling by officers, the citizen's conversation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, or_, select

from bot.privacy import mask_text
from bot.storage.audit import record
from bot.storage.engine import Database
from bot.storage.identities import Identities
from bot.storage.models import ChatIdentity, FollowUp, Outbox, RequestLog
from bot.storage.outbox import new_message

FOLLOWUP_STATUSES = ("new", "in-progress", "done")


class FollowUps:
    def __init__(self, db: Database, identities: Identities) -> None:
        self.db = db
        self.identities = identities

    def create(self, channel: str, chat_id: str, name: str, phone: str, question: str) -> int:
        """Store a ticket (status ``new``); returns its number."""
        ident = self.identities.get_or_create(channel, chat_id)
        with self.db.transaction() as s:
            row = FollowUp(identity_id=ident, channel=channel, name=name, phone=phone, question=mask_text(question),
                           status="new")
            s.add(row)
            s.flush()
            return row.id

    def get(self, followup_id: int) -> FollowUp | None:
        with self.db.transaction() as s:
            return s.get(FollowUp, followup_id)

    def recent(self, status: str | None = None, *, assigned_to: str | None = None,
             limit: int = 300) -> list[FollowUp]:
        q = select(FollowUp).order_by(FollowUp.id.desc()).limit(limit)
        if status:
            q = q.where(FollowUp.status == status)
        if assigned_to:
            q = q.where(FollowUp.assigned_to == assigned_to)
        with self.db.transaction() as s:
            return list(s.scalars(q))

    def counts(self) -> dict[str, int]:
        """Tickets per status."""
        with self.db.transaction() as s:
            return {str(k): int(n) for k, n in
                    s.execute(select(FollowUp.status, func.count()).group_by(FollowUp.status)).all()}

    def update(self, followup_id: int, *, actor: str, status: str | None = None, assigned_to: str | None = None,
               notes: str | None = None) -> None:
        if status is not None and status not in FOLLOWUP_STATUSES:
            raise ValueError(f"unknown status {status!r}")
        with self.db.transaction() as s:
            row = s.get(FollowUp, followup_id)
            if row is None:
                raise KeyError(followup_id)
            changes: dict[str, Any] = {}
            if status is not None:
                row.status = status
                changes["status"] = status
            if assigned_to is not None:
                row.assigned_to = assigned_to
                changes["assigned_to"] = assigned_to
            if notes is not None:
                row.notes = notes
                changes["notes"] = True  # the text itself may hold personal data
            record(s, actor, "followup.update", "followup", followup_id, changes)

    def reply(self, followup_id: int, text: str, *, actor: str, done: bool,
              note: Callable[[str], str]) -> str | None:
        """Queue ``text`` for the citizen on the channel they used and note it on the ticket (``note(channel)``
        is appended to the notes), in one transaction. Returns the channel, or None when the ticket or the
        citizen's chat is gone."""
        with self.db.transaction() as s:
            row = s.get(FollowUp, followup_id)
            ident = s.get(ChatIdentity, row.identity_id) if row is not None and row.identity_id else None
            if row is None or ident is None:
                return None
            msg = new_message(ident.channel, ident.external_id, text)
            msg.followup_id = followup_id
            s.add(msg)
            row.notes = ((row.notes or "") + "\n" + note(ident.channel)).strip()
            row.status = "done" if done else ("in-progress" if row.status == "new" else row.status)
            if not row.assigned_to:
                row.assigned_to = actor
            record(s, actor, "followup.reply", "followup", followup_id, {"channel": ident.channel,
                                                                         "status": row.status})
            return ident.channel

    def chat_of(self, followup: FollowUp) -> tuple[str, str] | None:
        """(channel, the channel's chat id) of the citizen who asked, None when unknown."""
        with self.db.transaction() as s:
            ident = s.get(ChatIdentity, followup.identity_id) if followup.identity_id else None
            return (ident.channel, ident.external_id) if ident is not None else None

    def conversation(self, followup: FollowUp, limit: int = 60) -> list[dict[str, Any]]:
        """The citizen's recent messages (and how the assistant handled them) and officers' messages to
        them, oldest first."""
        with self.db.transaction() as s:
            ident = s.get(ChatIdentity, followup.identity_id) if followup.identity_id else None
            if ident is None:
                return []
            channel, chat_id = ident.channel, ident.external_id
        return self.chat_conversation(channel, chat_id, limit)

    def chat_conversation(self, channel: str, chat_id: str, limit: int = 60) -> list[dict[str, Any]]:
        """The same for one chat of a channel (e.g. from the unanswered queue)."""
        events: list[dict[str, Any]] = []
        with self.db.transaction() as s:
            ident = s.scalar(select(ChatIdentity).where(ChatIdentity.channel == channel,
                                                        ChatIdentity.external_id == str(chat_id)))
            if ident is None:
                return []
            for req in s.scalars(select(RequestLog).where(RequestLog.identity_id == ident.id)
                                 .order_by(RequestLog.created_at.desc()).limit(limit)):
                events.append({"at": req.created_at, "who": "citizen", "text": req.question, "kind": req.kind,
                               "entry_id": req.entry_id})
            for out in s.scalars(select(Outbox).where(Outbox.channel == ident.channel,
                                                      Outbox.chat_id == ident.external_id,
                                                      or_(Outbox.origin.is_(None), Outbox.origin != "assistant"))
                                 .order_by(Outbox.created_at.desc()).limit(limit)):
                events.append({"at": out.created_at, "who": "officer", "text": out.text, "kind": out.status,
                               "entry_id": None, "outbox_id": out.id, "error": out.last_error,
                               "attempts": out.attempts})
        events.sort(key=lambda e: e["at"])
        return events


__all__ = ["FOLLOWUP_STATUSES", "FollowUps"]
