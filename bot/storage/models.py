"""The database tables (SQLAlchemy 2.x declarative). Every change needs a migration in bot/migrations."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Naive UTC timestamp (stored the same way on SQLite and PostgreSQL)."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class ChatIdentity(Base):
    """A citizen as seen by one channel (no personal data: only the channel's opaque id)."""

    __tablename__ = "chat_identities"
    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_chat_identities_channel_external"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class RequestLog(Base):
    """Every message the assistant answered and how."""

    __tablename__ = "requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("chat_identities.id", ondelete="SET NULL"), index=True)
    question: Mapped[str] = mapped_column(Text)
    normalized: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    """The reply's kind (``bot.protocol.ReplyKind``: answer, choices, fallback, document, calculation...)."""
    topic: Mapped[str | None] = mapped_column(String(64))
    entry_id: Mapped[str | None] = mapped_column(String(128), index=True)
    score: Mapped[float | None] = mapped_column(Float)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    kb_version: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class Unanswered(Base):
    """A question the assistant could not answer, for officers to review."""

    __tablename__ = "unanswered"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id", ondelete="SET NULL"))
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("chat_identities.id", ondelete="SET NULL"))
    question: Mapped[str] = mapped_column(Text)
    normalized: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="new", index=True)
    """new, answered, dismissed"""
    officer_reply: Mapped[str | None] = mapped_column(Text)
    entry_id: Mapped[str | None] = mapped_column(String(128))
    """The knowledge entry this question became (or was attached to)."""
    handled_by: Mapped[str | None] = mapped_column(String(64))
    group_label: Mapped[str | None] = mapped_column(String(32))
    """Set when an officer split questions out of a group: questions with the same label are grouped apart."""
    assigned_to: Mapped[str | None] = mapped_column(String(64), index=True)
    """The officer (console user name) the question was assigned to ("Giao cho")."""
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class FollowUp(Base):
    """A citizen's request to be contacted by an officer."""

    __tablename__ = "followups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("chat_identities.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(128))
    phone: Mapped[str] = mapped_column(String(20))
    question: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="new", index=True)
    """new, in-progress, done"""
    assigned_to: Mapped[str | None] = mapped_column(String(64))
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class Feedback(Base):
    """Helpful / not helpful on an answer."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id", ondelete="SET NULL"), index=True)
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("chat_identities.id", ondelete="SET NULL"))
    entry_id: Mapped[str | None] = mapped_column(String(128), index=True)
    helpful: Mapped[bool] = mapped_column(Boolean)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Dossier(Base):
    """An administrative dossier imported from the one-stop system's export."""

    __tablename__ = "dossiers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    receipt: Mapped[str] = mapped_column(String(64))
    """Receipt number as exported (e.g. H41.22-241105-0012)."""
    receipt_key: Mapped[str] = mapped_column(String(64), unique=True)
    """Upper-case letters and digits only: the key for upserts and lookups."""
    procedure: Mapped[str] = mapped_column(Text)
    applicant_name: Mapped[str] = mapped_column(String(200))
    applicant_phone: Mapped[str | None] = mapped_column(String(20))
    received_at: Mapped[datetime] = mapped_column(DateTime)
    due_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), index=True)
    status_label: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    source_updated_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class DossierHistory(Base):
    """One row per status (or note) a dossier has had; never deleted by re-imports."""

    __tablename__ = "dossier_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    status_label: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    changed_at: Mapped[datetime | None] = mapped_column(DateTime)
    """When the one-stop system says the change happened (its "Ngày cập nhật"), if known."""
    import_id: Mapped[int | None] = mapped_column(ForeignKey("dossier_imports.id", ondelete="SET NULL"))
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class DossierImport(Base):
    """One run of ``ldtbxh dossiers import``."""

    __tablename__ = "dossier_imports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    filename: Mapped[str] = mapped_column(String(500))
    actor: Mapped[str | None] = mapped_column(String(64))
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_inserted: Mapped[int] = mapped_column(Integer, default=0)
    rows_updated: Mapped[int] = mapped_column(Integer, default=0)
    rows_unchanged: Mapped[int] = mapped_column(Integer, default=0)
    rows_failed: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    undo: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """What undoing this run needs: ``inserted`` (the dossier ids it added) and ``previous`` (the values the
    rows it updated had before, by dossier id). Set by console imports; None: this run cannot be undone."""
    undone_at: Mapped[datetime | None] = mapped_column(DateTime)
    undone_by: Mapped[str | None] = mapped_column(String(64))


class DossierLookupLog(Base):
    """Every dossier lookup by a citizen: the rate limit counts these, unknown numbers are reviewed here."""

    __tablename__ = "dossier_lookups"
    __table_args__ = (Index("ix_dossier_lookups_chat_time", "channel", "chat_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(128))
    receipt: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16), index=True)
    """found, not_found, unavailable, verified, verify_failed, rate_limited"""
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AuditLog(Base):
    """What officers and admins did (imports, answers, follow-up changes, lookups of full details)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(128))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class ConversationState(Base):
    """The dialogue state of one chat (which flow and step it is in)."""

    __tablename__ = "conversation_state"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class Outbox(Base):
    """Messages waiting to be delivered by a channel (retried with back-off)."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    buttons: Mapped[list[Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """pending, sent, failed"""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    reply_to: Mapped[str | None] = mapped_column(Text)
    """The question this message answers (masked, shortened): quoted when the message is delivered late."""
    unanswered_id: Mapped[int | None] = mapped_column(Integer, index=True)
    """The unanswered question an officer's reply answers (the console shows its delivery)."""
    followup_id: Mapped[int | None] = mapped_column(Integer, index=True)
    """The follow-up ticket an officer's reply belongs to (the ticket shows its delivery)."""
    origin: Mapped[str | None] = mapped_column(String(16))
    """``assistant`` for the assistant's own answers; None for officers' messages."""


class User(Base):
    """An officer or admin of the console."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="officer")
    """officer, admin"""
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class KbDraft(Base):
    """A Q&A entry drafted in the console from an officer's reply, waiting for an administrator."""

    __tablename__ = "kb_drafts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    question: Mapped[str] = mapped_column(Text)
    paraphrases: Mapped[list[Any] | None] = mapped_column(JSON)
    answer: Mapped[str] = mapped_column(Text)
    topic: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    """draft, approved, rejected"""
    author: Mapped[str] = mapped_column(String(64))
    reviewer: Mapped[str | None] = mapped_column(String(64))
    entry_id: Mapped[str | None] = mapped_column(String(128))
    """The knowledge entry written on approval."""
    unanswered_ids: Mapped[list[Any] | None] = mapped_column(JSON)
    """The unanswered questions this draft came from."""
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class ConsoleSession(Base):
    """A signed-in console session (the cookie holds a random token; only its hash is stored)."""

    __tablename__ = "console_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    """sha256 of the cookie token"""
    username: Mapped[str] = mapped_column(String(64), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ChannelToken(Base):
    """OAuth tokens of a channel (the Zalo OA's access and refresh tokens).

    The refresh token is single-use: a refresh replaces both tokens in one transaction under a row lock.
    """

    __tablename__ = "channel_tokens"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    access_token: Mapped[str | None] = mapped_column(Text)
    refresh_token: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    """When the access token expires (naive UTC); None: unknown (e.g. seeded from the environment)."""
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class InboxEvent(Base):
    """An event received from a channel, recorded before the platform is answered 200.

    ``(channel, event_id)`` is unique: a replayed or duplicated event (same platform id) is recorded once
    and answered once, whatever process or host received it. The inbox worker claims pending rows
    (``claim_token``/``claimed_until``; a claim whose time has passed is taken again after a crash), runs
    the dialogue, and in one transaction queues the replies in the outbox and marks the row ``done``.
    """

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("channel", "event_id", name="uq_inbox_channel_event"),
        Index("ix_inbox_state_id", "state", "id"),
        Index("ix_inbox_chat", "channel", "chat_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(160))
    """The platform's id of the event: Telegram ``update_id``, Zalo ``msg_id`` (else the signature), the
    web page's client message id (prefixed with its chat id)."""
    chat_id: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """The event as received (cleaned text); emptied once the event is processed."""
    state: Mapped[str] = mapped_column(String(16), default="pending")
    """pending, processing, done, ignored, failed"""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime)
    result: Mapped[list[Any] | None] = mapped_column(JSON)
    """The replies (web chat only: a retry of the same client message id gets them again)."""
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(DateTime)


class RateEvent(Base):
    """One counted action for a shared limit (dossier lookups per receipt / source, web messages...)."""

    __tablename__ = "rate_events"
    __table_args__ = (Index("ix_rate_events_key_time", "key", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ChatTranscript(Base):
    """The web chat's conversation as its page showed it (questions, answers, officers' messages), kept so a
    reload restores it; rows older than ``serve.web_history_days`` are deleted."""

    __tablename__ = "chat_transcript"
    __table_args__ = (Index("ix_chat_transcript_chat", "channel", "chat_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    """user, bot, officer"""
    text: Mapped[str] = mapped_column(Text)
    kind: Mapped[str | None] = mapped_column(String(16))
    buttons: Mapped[list[Any] | None] = mapped_column(JSON)
    payload: Mapped[str | None] = mapped_column(String(64))
    """The button a citizen pressed (role user)."""
    client_id: Mapped[str | None] = mapped_column(String(64))
    """The page's id of the message a reply answers (a retried message is answered once)."""
    outbox_id: Mapped[int | None] = mapped_column(Integer, unique=True)
    """An officer's message: its outbox row (recorded once, when the page shows it)."""
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
