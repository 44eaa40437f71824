"""A small repository API over the database, for the dialogue, the channels and the console.

``Store(settings)`` (or ``Store(engine)`` / ``Store("sqlite:///...")``) checks at construction that the
schema is current and raises :class:`bot.db.SchemaBehindError` (whose message says ``run: ldtbxh db
upgrade``) otherwise. Every method opens and commits its own short transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.db import check_schema_current, make_engine, session_factory
from bot.messages import Button
from bot.models import (
    AuditLog,
    ChatIdentity,
    ConversationState,
    Dossier,
    DossierHistory,
    DossierLookupLog,
    Feedback,
    FollowUp,
    KbVersion,
    Outbox,
    RequestLog,
    Unanswered,
    User,
    utcnow,
)
from bot.privacy import mask_text

log = logging.getLogger(__name__)

FOLLOWUP_STATUSES = ("new", "in-progress", "done")
UNANSWERED_STATUSES = ("new", "answered", "dismissed")
REQUEST_KINDS = ("answer", "choices", "fallback", "dossier", "followup", "smalltalk", "info", "error")
LOOKUP_OUTCOMES = ("found", "not_found", "unavailable", "verified", "verify_failed", "rate_limited")
RATE_LIMITED_OUTCOMES = ("found", "not_found", "verify_failed")
"""Lookup outcomes that count against the per-chat hourly limit."""


@dataclass(frozen=True)
class OutboxMessage:
    id: int
    channel: str
    chat_id: str
    text: str
    buttons: list[Button]
    attempts: int


class Store:
    def __init__(self, target: Settings | Engine | str, *, check_schema: bool = True) -> None:
        self.engine = target if isinstance(target, Engine) else make_engine(target)
        if check_schema:
            check_schema_current(self.engine)
        self._sessions = session_factory(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on error."""
        with self._sessions.begin() as s:
            yield s

    def close(self) -> None:
        self.engine.dispose()

    # --- identities -------------------------------------------------------------------------------

    def identity(self, channel: str, chat_id: str) -> int:
        """The id of the chat identity (channel + the channel's external id), created on first use."""
        chat_id = str(chat_id)
        with self.session() as s:
            row = s.scalar(
                select(ChatIdentity).where(ChatIdentity.channel == channel, ChatIdentity.external_id == chat_id)
            )
            if row is not None:
                row.last_seen_at = utcnow()
                return row.id
        try:
            with self.session() as s:
                row = ChatIdentity(channel=channel, external_id=chat_id)
                s.add(row)
                s.flush()
                return row.id
        except IntegrityError:  # created concurrently by another worker
            with self.session() as s:
                found = s.scalar(
                    select(ChatIdentity.id).where(
                        ChatIdentity.channel == channel, ChatIdentity.external_id == chat_id
                    )
                )
                assert found is not None
                return found

    # --- requests, unanswered questions, feedback ---------------------------------------------

    def log_request(
        self,
        channel: str,
        chat_id: str,
        question: str,
        *,
        normalized: str | None = None,
        kind: str,
        entry_id: str | None = None,
        topic: str | None = None,
        score: float | None = None,
        latency_ms: float | None = None,
        kb_version: str | None = None,
    ) -> int:
        """Record one answered message and its outcome; returns the request id (for feedback).

        Phone and ID numbers in the question are masked before storing.
        """
        if kind not in REQUEST_KINDS:
            raise ValueError(f"unknown request kind {kind!r}")
        ident = self.identity(channel, chat_id)
        with self.session() as s:
            row = RequestLog(
                identity_id=ident,
                question=mask_text(question),
                normalized=mask_text(normalized) if normalized else normalized,
                kind=kind,
                entry_id=entry_id,
                topic=topic,
                score=score,
                latency_ms=latency_ms,
                kb_version=kb_version,
            )
            s.add(row)
            s.flush()
            return row.id

    def requests_since(self, channel: str, chat_id: str, since: datetime) -> int:
        """How many messages this chat sent since ``since`` (for flood limiting across processes)."""
        with self.session() as s:
            return int(s.scalar(
                select(func.count(RequestLog.id))
                .join(ChatIdentity, ChatIdentity.id == RequestLog.identity_id)
                .where(ChatIdentity.channel == channel, ChatIdentity.external_id == str(chat_id),
                       RequestLog.created_at >= since)
            ) or 0)

    def log_unanswered(
        self,
        channel: str,
        chat_id: str,
        question: str,
        *,
        normalized: str | None = None,
        request_id: int | None = None,
    ) -> int:
        ident = self.identity(channel, chat_id)
        with self.session() as s:
            row = Unanswered(
                identity_id=ident,
                request_id=request_id,
                question=mask_text(question),
                normalized=mask_text(normalized) if normalized else normalized,
                status="new",
            )
            s.add(row)
            s.flush()
            return row.id

    def list_unanswered(self, status: str | None = "new", limit: int = 100) -> list[Unanswered]:
        with self.session() as s:
            q = select(Unanswered).order_by(Unanswered.created_at.desc(), Unanswered.id.desc()).limit(limit)
            if status:
                q = q.where(Unanswered.status == status)
            return list(s.scalars(q))

    def resolve_unanswered(
        self,
        unanswered_id: int,
        *,
        actor: str,
        status: str,
        officer_reply: str | None = None,
        entry_id: str | None = None,
    ) -> None:
        """Mark an unanswered question answered (with the reply / the entry it became) or dismissed."""
        if status not in UNANSWERED_STATUSES:
            raise ValueError(f"unknown status {status!r}")
        with self.session() as s:
            row = s.get(Unanswered, unanswered_id)
            if row is None:
                raise KeyError(unanswered_id)
            row.status = status
            row.officer_reply = officer_reply if officer_reply is not None else row.officer_reply
            row.entry_id = entry_id if entry_id is not None else row.entry_id
            row.handled_by = actor
            self._audit(s, actor, f"unanswered.{status}", "unanswered", unanswered_id, {"entry_id": entry_id})

    def add_feedback(
        self,
        channel: str,
        chat_id: str,
        helpful: bool,
        *,
        request_id: int | None = None,
        entry_id: str | None = None,
        comment: str | None = None,
    ) -> int:
        ident = self.identity(channel, chat_id)
        with self.session() as s:
            row = Feedback(
                identity_id=ident,
                request_id=request_id,
                entry_id=entry_id,
                helpful=bool(helpful),
                comment=mask_text(comment) if comment else None,
            )
            s.add(row)
            s.flush()
            return row.id

    # --- conversation state ---------------------------------------------------------------------

    def get_state(self, channel: str, chat_id: str, *, max_age: timedelta | None = None) -> dict[str, Any] | None:
        """The stored state of a chat, or None (also when it is older than ``max_age``)."""
        with self.session() as s:
            row = s.get(ConversationState, (channel, str(chat_id)))
            if row is None:
                return None
            if max_age is not None and row.updated_at < utcnow() - max_age:
                return None
            return dict(row.state)

    def set_state(self, channel: str, chat_id: str, state: dict[str, Any] | None) -> None:
        """Store the state of a chat; ``None`` or ``{}`` clears it."""
        chat_id = str(chat_id)
        with self.session() as s:
            row = s.get(ConversationState, (channel, chat_id))
            if not state:
                if row is not None:
                    s.delete(row)
                return
            if row is None:
                s.add(ConversationState(channel=channel, chat_id=chat_id, state=dict(state)))
            else:
                row.state = dict(state)
                row.updated_at = utcnow()

    # --- outbox ---------------------------------------------------------------------------------

    def enqueue_outbox(
        self, channel: str, chat_id: str, text: str, buttons: Sequence[Button] | None = None
    ) -> int:
        with self.session() as s:
            row = Outbox(
                channel=channel,
                chat_id=str(chat_id),
                text=text,
                buttons=[{"label": b.label, "payload": b.payload} for b in buttons or []],
                status="pending",
                attempts=0,
                next_attempt_at=utcnow(),
            )
            s.add(row)
            s.flush()
            return row.id

    def due_outbox(self, channel: str | None = None, limit: int = 50) -> list[OutboxMessage]:
        """Pending messages whose next attempt is due, oldest first."""
        with self.session() as s:
            q = (
                select(Outbox)
                .where(Outbox.status == "pending", Outbox.next_attempt_at <= utcnow())
                .order_by(Outbox.id)
                .limit(limit)
            )
            if channel:
                q = q.where(Outbox.channel == channel)
            return [
                OutboxMessage(
                    id=r.id,
                    channel=r.channel,
                    chat_id=r.chat_id,
                    text=r.text,
                    buttons=[Button(b["label"], b["payload"]) for b in r.buttons or []],
                    attempts=r.attempts,
                )
                for r in s.scalars(q)
            ]

    def mark_outbox_sent(self, outbox_id: int) -> None:
        with self.session() as s:
            s.execute(
                update(Outbox)
                .where(Outbox.id == outbox_id)
                .values(status="sent", sent_at=utcnow(), attempts=Outbox.attempts + 1, last_error=None)
            )

    def mark_outbox_failed(self, outbox_id: int, error: str, *, max_attempts: int = 5) -> str:
        """Record a failed delivery: retried with exponential back-off, ``failed`` after ``max_attempts``."""
        with self.session() as s:
            row = s.get(Outbox, outbox_id)
            if row is None:
                raise KeyError(outbox_id)
            row.attempts += 1
            row.last_error = mask_text(error)[:2000]
            if row.attempts >= max_attempts:
                row.status = "failed"
            else:
                row.next_attempt_at = utcnow() + timedelta(seconds=30 * 2 ** (row.attempts - 1))
            return row.status

    # --- follow-up requests ---------------------------------------------------------------------

    def create_followup(self, channel: str, chat_id: str, name: str, phone: str, question: str) -> int:
        """Store a follow-up ticket (status ``new``); returns its number."""
        ident = self.identity(channel, chat_id)
        with self.session() as s:
            row = FollowUp(
                identity_id=ident, channel=channel, name=name, phone=phone, question=question, status="new"
            )
            s.add(row)
            s.flush()
            return row.id

    def get_followup(self, followup_id: int) -> FollowUp | None:
        with self.session() as s:
            return s.get(FollowUp, followup_id)

    def list_followups(self, status: str | None = None, limit: int = 100) -> list[FollowUp]:
        with self.session() as s:
            q = select(FollowUp).order_by(FollowUp.id.desc()).limit(limit)
            if status:
                q = q.where(FollowUp.status == status)
            return list(s.scalars(q))

    def update_followup(
        self,
        followup_id: int,
        *,
        actor: str,
        status: str | None = None,
        assigned_to: str | None = None,
        notes: str | None = None,
    ) -> None:
        if status is not None and status not in FOLLOWUP_STATUSES:
            raise ValueError(f"unknown status {status!r}")
        with self.session() as s:
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
            self._audit(s, actor, "followup.update", "followup", followup_id, changes)

    # --- dossier lookups (rate limit) ----------------------------------------------------------

    def log_lookup(self, channel: str, chat_id: str, receipt: str, outcome: str) -> None:
        if outcome not in LOOKUP_OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        with self.session() as s:
            s.add(DossierLookupLog(channel=channel, chat_id=str(chat_id), receipt=receipt[:64], outcome=outcome))

    def lookups_since(
        self,
        channel: str,
        chat_id: str,
        since: datetime,
        outcomes: Sequence[str] = RATE_LIMITED_OUTCOMES,
        *,
        receipt: str | None = None,
    ) -> tuple[int, datetime | None]:
        """How many counted lookups this chat made since ``since``, and the oldest of them.

        With ``receipt``: the lookups of that receipt number from any chat (to stop guessing spread over
        several chats).
        """
        conds = [DossierLookupLog.created_at >= since, DossierLookupLog.outcome.in_(list(outcomes))]
        if receipt is not None:
            conds.append(DossierLookupLog.receipt == receipt[:64])
        else:
            conds += [DossierLookupLog.channel == channel, DossierLookupLog.chat_id == str(chat_id)]
        with self.session() as s:
            count, oldest = s.execute(
                select(func.count(DossierLookupLog.id), func.min(DossierLookupLog.created_at)).where(*conds)
            ).one()
            return int(count), oldest

    def unknown_receipts(self, limit: int = 100) -> list[tuple[str, int]]:
        """Receipt numbers citizens asked about that were not found, most asked first."""
        with self.session() as s:
            rows = s.execute(
                select(DossierLookupLog.receipt, func.count())
                .where(DossierLookupLog.outcome == "not_found")
                .group_by(DossierLookupLog.receipt)
                .order_by(func.count().desc())
                .limit(limit)
            ).all()
            return [(r[0], int(r[1])) for r in rows]

    def dossier_history(self, receipt_key: str) -> list[DossierHistory]:
        with self.session() as s:
            d = s.scalar(select(Dossier).where(Dossier.receipt_key == receipt_key))
            if d is None:
                return []
            return list(
                s.scalars(
                    select(DossierHistory).where(DossierHistory.dossier_id == d.id).order_by(DossierHistory.id)
                )
            )

    # --- audit, users, knowledge versions ------------------------------------------------------

    @staticmethod
    def _audit(
        s: Session, actor: str, action: str, target_type: str | None, target_id: object, details: dict[str, Any] | None
    ) -> None:
        s.add(
            AuditLog(
                actor=actor,
                action=action,
                target_type=target_type,
                target_id=None if target_id is None else str(target_id),
                details=details,
            )
        )

    def audit(
        self,
        actor: str,
        action: str,
        target_type: str | None = None,
        target_id: object = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record an officer's action. Keep personal data out of ``details``."""
        with self.session() as s:
            self._audit(s, actor, action, target_type, target_id, details)

    def audit_entries(self, limit: int = 100) -> list[AuditLog]:
        with self.session() as s:
            return list(s.scalars(select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)))

    def add_user(self, username: str, password_hash: str, role: str = "officer", *, actor: str = "system") -> int:
        if role not in {"officer", "admin"}:
            raise ValueError("role must be 'officer' or 'admin'")
        with self.session() as s:
            row = User(username=username, password_hash=password_hash, role=role, active=True)
            s.add(row)
            s.flush()
            self._audit(s, actor, "user.create", "user", username, {"role": role})
            return row.id

    def get_user(self, username: str) -> User | None:
        with self.session() as s:
            return s.scalar(select(User).where(User.username == username))

    def set_user_active(self, username: str, active: bool, *, actor: str) -> None:
        with self.session() as s:
            s.execute(update(User).where(User.username == username).values(active=active))
            self._audit(s, actor, "user.activate" if active else "user.deactivate", "user", username, None)

    def add_kb_version(self, name: str, *, activate: bool = True) -> int:
        with self.session() as s:
            if activate:
                s.execute(update(KbVersion).values(active=False))
            row = KbVersion(name=name, active=activate)
            s.add(row)
            s.flush()
            return row.id

    def activate_kb_version(self, name: str, *, actor: str = "system") -> None:
        with self.session() as s:
            if s.scalar(select(KbVersion.id).where(KbVersion.name == name)) is None:
                raise KeyError(name)
            s.execute(update(KbVersion).values(active=False))
            s.execute(update(KbVersion).where(KbVersion.name == name).values(active=True))
            self._audit(s, actor, "kb.activate", "kb_version", name, None)

    def active_kb_version(self) -> str | None:
        with self.session() as s:
            return s.scalar(select(KbVersion.name).where(KbVersion.active.is_(True)).limit(1))

    def delete_kb_version(self, name: str) -> None:
        with self.session() as s:
            s.execute(delete(KbVersion).where(KbVersion.name == name))
